import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@flowmeter/test-utils";
import { parseRunnerConfig } from "../config.js";
import { buildStageEnv, inheritedEnv, isFlowmeterConfigVariable, isInheritedVariable, resolveSecrets } from "./stage-env.js";

const host = {
  PATH: "/usr/bin:/bin",
  HOME: "/home/flow",
  LANG: "C.UTF-8",
  LC_ALL: "C.UTF-8",
  TZ: "UTC",
  TMPDIR: "/tmp",
  RUNNER_API_TOKENS: "runner-token-1",
  REDIS_URL: "redis://:hunter2@127.0.0.1:6379",
  QUEUE_PREFIX: "flowmeter",
  FLOWMETER_DATA_DIR: "/var/lib/flowmeter",
  INGEST_API_KEYS: "ingest-key-1",
  AWS_SECRET_ACCESS_KEY: "aws-secret-1",
  DEPLOY_TOKEN: "deploy-token-1",
};

describe("stage environment", () => {
  it("inherits only the allow-list from the runner's environment", () => {
    expect(inheritedEnv(host)).toEqual({ PATH: "/usr/bin:/bin", HOME: "/home/flow", LANG: "C.UTF-8", LC_ALL: "C.UTF-8", TZ: "UTC", TMPDIR: "/tmp" });
  });

  it("is built from the allow-list, the run's variables, the secrets and the stage's env, in that order", () => {
    const env = buildStageEnv({
      hostEnv: host,
      run: { FLOWMETER_RUN_ID: "r1" },
      secrets: { DEPLOY: "deploy-token-1" },
      stage: { HOME: "/work", MODE: "fast" },
    });
    expect(env).toEqual({
      PATH: "/usr/bin:/bin",
      HOME: "/work",
      LANG: "C.UTF-8",
      LC_ALL: "C.UTF-8",
      TZ: "UTC",
      TMPDIR: "/tmp",
      FLOWMETER_RUN_ID: "r1",
      DEPLOY: "deploy-token-1",
      MODE: "fast",
    });
  });

  it("never inherits, nor takes as a secret, a variable the runner's config reads", () => {
    const read = new Set<string>();
    const source: Record<string, string | undefined> = { RUNNER_WORKFLOWS_DIR: "/tmp" };
    const recording = new Proxy(source, {
      get: (target, name) => {
        if (typeof name !== "string") return undefined;
        read.add(name);
        return target[name];
      },
    });
    parseRunnerConfig(recording, "/tmp");
    expect(read.size).toBeGreaterThan(15);
    for (const name of read) expect([name, isFlowmeterConfigVariable(name), isInheritedVariable(name)]).toEqual([name, true, false]);
    for (const name of ["INGEST_API_KEYS", "WORKER_URL", "CLICKHOUSE_URL", "LOG_LEVEL"]) expect(isFlowmeterConfigVariable(name)).toBe(true);
    expect(isFlowmeterConfigVariable("DEPLOY_TOKEN")).toBe(false);
  });
});

describe("resolveSecrets", () => {
  it("reads secrets from the runner's environment and from files; problems name the secret, never a value", () => {
    const dir = tempDir("secrets");
    try {
      writeFileSync(join(dir.path, "key.txt"), "file-secret-1\n");
      writeFileSync(join(dir.path, "short.txt"), "ab\n");
      writeFileSync(join(dir.path, "big.txt"), "x".repeat(70_000));
      const resolved = resolveSecrets(
        {
          DEPLOY: { env: "DEPLOY_TOKEN" },
          KEY: { file: "key.txt" },
          ABSOLUTE: { file: join(dir.path, "key.txt") },
          MISSING: { env: "NOT_SET_ANYWHERE" },
          CONFIG: { env: "REDIS_URL" },
          SHORT: { file: "short.txt" },
          BIG: { file: "big.txt" },
          NOFILE: { file: "nope.txt" },
          ENVIRON: { file: "/proc/self/environ" },
        },
        host,
        dir.path,
      );
      expect(resolved.values).toEqual({ DEPLOY: "deploy-token-1", KEY: "file-secret-1", ABSOLUTE: "file-secret-1" });
      expect(resolved.problems).toEqual([
        "secret MISSING: NOT_SET_ANYWHERE is not set in the runner's environment",
        "secret CONFIG: REDIS_URL is flowmeter's configuration, never given to stages",
        "secret SHORT: file short.txt holds fewer than 4 characters (too short to mask)",
        "secret BIG: file big.txt is larger than 65536 bytes",
        "secret NOFILE: cannot read file nope.txt (ENOENT)",
        "secret ENVIRON: file /proc/self/environ is under /proc, /sys or /dev (the runner's own state is never a secret)",
      ]);
      expect(resolved.problems.join(" ")).not.toContain("hunter2");
    } finally {
      dir.remove();
    }
  });
});
