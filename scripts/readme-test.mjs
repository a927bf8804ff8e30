#!/usr/bin/env node
/**
 * The README, tried as a newcomer would: clones this repository into a temporary directory, runs the README's first
 * command (install and start) there, then every command of its "Try it" section exactly as written, in order, and
 * checks each against the output the README shows under it.
 *
 * Rules: a command is a line of a ```sh block (a trailing backslash continues it); the `# ` lines right after it are
 * its output as the README shows it. Every command must exit 0, and every output line shown must appear in what the
 * command printed, in the same order (trailing spaces ignored; `…` stands for any text). A read (/query, flowmeter
 * query) whose output does not match yet is run again until it does or 30 s pass: the worker writes about once a
 * second, as a person copying commands would not notice.
 *
 *   node scripts/readme-test.mjs          (run by .ci/run; needs ports 7070-7072 free and Redis, as npm start does)
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const RETRY_MS = 30_000;
const START_TIMEOUT_MS = 5 * 60_000;

/** The README's code blocks of one language, under `heading` (or the whole file), as lists of {command, expected}. */
export function readmeSteps(markdown, heading) {
  let text = markdown;
  if (heading !== undefined) {
    const start = markdown.indexOf(`\n## ${heading}\n`);
    if (start < 0) throw new Error(`README has no "## ${heading}" section`);
    const end = markdown.indexOf("\n## ", start + 1);
    text = markdown.slice(start, end < 0 ? undefined : end);
  }
  const steps = [];
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let pending = "";
    for (const line of (block[1] ?? "").split("\n")) {
      if (pending !== "") {
        pending += `\n${line}`;
        if (!line.endsWith("\\")) {
          steps.push({ command: pending, expected: [] });
          pending = "";
        }
      } else if (line.startsWith("#")) {
        steps.at(-1)?.expected.push(line.replace(/^# ?/, ""));
      } else if (line.trim() !== "") {
        const command = line.replace(/\s+#\s.*$/, "");
        if (command.endsWith("\\")) pending = command;
        else steps.push({ command, expected: [] });
      }
    }
  }
  return steps;
}

/** True when every expected line appears in `output`, in order; `…` matches any text. */
export function outputMatches(output, expected) {
  const lines = output.split("\n").map((line) => line.replace(/\s+$/, ""));
  let at = 0;
  for (const want of expected) {
    const pattern = new RegExp(
      `^${want
        .replace(/\s+$/, "")
        .split("…")
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
    );
    while (at < lines.length && !pattern.test(lines[at] ?? "")) at += 1;
    if (at === lines.length) return false;
    at += 1;
  }
  return true;
}

function newcomerEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(REDIS_URL|QUEUE_PREFIX|FLOWMETER_|CLICKHOUSE_|INGEST_|WORKER_|RUNNER_|BENCH_|LOG_LEVEL)/.test(name)) delete env[name];
  }
  return env;
}

function runStep(cwd, env, command) {
  const result = spawnSync("bash", ["-c", command], { cwd, env, encoding: "utf8", timeout: 120_000 });
  return { status: result.status, output: result.stdout ?? "", errors: result.stderr ?? "" };
}

/** `npx flowmeter run slow.yaml`, then Ctrl-C (SIGINT to its process group, as a terminal sends it) once it runs. */
function interruptedRun(cwd, env) {
  return new Promise((resolve) => {
    const child = spawn("npx", ["flowmeter", "run", "slow.yaml"], { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let interrupted = false;
    const onData = (chunk) => {
      output += chunk;
      if (!interrupted && output.includes("stage.started")) {
        interrupted = true;
        process.kill(-child.pid, "SIGINT");
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const timer = setTimeout(() => process.kill(-child.pid, "SIGKILL"), 60_000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/** The pipeline's queues in the shared Redis, which outlive the clone: deleted with the clone's own ioredis. */
async function deleteQueueKeys(dir, prefix) {
  if (prefix === undefined) return;
  const { Redis } = await import(join(dir, "node_modules/ioredis/built/index.js"));
  const redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

async function main() {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const [install] = readmeSteps(readme.slice(0, readme.indexOf("\n## ")));
  if (install === undefined) throw new Error("the README opens with no ```sh block holding the install and start command");
  const steps = readmeSteps(readme, "Try it");
  const dir = mkdtempSync(join(tmpdir(), "flowmeter-readme-"));
  const env = newcomerEnv();
  let failures = 0;
  let pipeline;
  let log = "";
  try {
    const cloned = spawnSync("git", ["clone", "--quiet", root, dir], { stdio: "inherit" });
    if (cloned.status !== 0) throw new Error("git clone failed");
    process.stdout.write(`readme-test: in ${dir}\n$ ${install.command}\n`);
    const started = Date.now();
    pipeline = spawn("bash", ["-c", install.command], { cwd: dir, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    pipeline.stdout.on("data", (chunk) => (log += chunk));
    pipeline.stderr.on("data", (chunk) => (log += chunk));
    while (!log.includes("flowmeter is running")) {
      if (pipeline.exitCode !== null) throw new Error(`\`${install.command}\` exited ${pipeline.exitCode} before flowmeter was running:\n${log}`);
      if (Date.now() - started > START_TIMEOUT_MS)
        throw new Error(`flowmeter was not running ${START_TIMEOUT_MS / 1000} s after \`${install.command}\`:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    process.stdout.write(`  running ${((Date.now() - started) / 1000).toFixed(1)} s after the command\n`);

    for (const step of steps) {
      const isRead = /\/query|flowmeter query/.test(step.command);
      const deadline = Date.now() + (isRead ? RETRY_MS : 0);
      let result = runStep(dir, env, step.command);
      while (result.status === 0 && !outputMatches(result.output, step.expected) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        result = runStep(dir, env, step.command);
      }
      const ok = result.status === 0 && outputMatches(result.output, step.expected);
      process.stdout.write(`${ok ? "ok  " : "FAIL"} $ ${step.command}\n`);
      if (!ok) {
        failures += 1;
        const indent = (text) =>
          text
            .split("\n")
            .map((line) => `    ${line}`)
            .join("\n");
        process.stdout.write(
          `  exit ${result.status}; the README shows:\n${indent(step.expected.join("\n"))}\n  it printed:\n${indent(result.output)}\n  and on stderr:\n${indent(result.errors)}\n`,
        );
      }
    }

    // "Ctrl-C cancels it" and the exit code 2 the README promises, through npx as a user runs it.
    writeFileSync(join(dir, "slow.yaml"), "name: slow\nstages:\n  - name: wait\n    driver: shell\n    run: sleep 60\n");
    const cancelled = await interruptedRun(dir, env);
    const cancelOk = cancelled.code === 2 && cancelled.output.includes("run cancelled");
    process.stdout.write(
      `${cancelOk ? "ok  " : "FAIL"} Ctrl-C on npx flowmeter run cancels the run and exits 2 (exit ${cancelled.code ?? cancelled.signal})\n`,
    );
    if (!cancelOk) {
      failures += 1;
      process.stdout.write(cancelled.output);
    }

    process.kill(-pipeline.pid, "SIGINT");
    const stopped = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 90_000);
      // "close": the process has exited and its output has been read to the end.
      pipeline.once("close", (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    const drained = log.includes("worker stopped");
    const ok = stopped === 0 && drained;
    process.stdout.write(`${ok ? "ok  " : "FAIL"} Ctrl-C stops it, the worker drained (exit ${stopped ?? pipeline.signalCode})\n`);
    if (!ok) {
      failures += 1;
      process.stdout.write(log);
    }
  } finally {
    await deleteQueueKeys(dir, /queue_prefix=(\S+)/.exec(log)?.[1]).catch((error) =>
      process.stdout.write(`readme-test: could not delete the queue keys: ${error instanceof Error ? error.message : String(error)}\n`),
    );
    if (pipeline !== undefined && pipeline.exitCode === null && pipeline.signalCode === null) process.kill(-pipeline.pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    failures === 0 ? `readme-test: all ${steps.length + 3} steps as the README says\n` : `readme-test: ${failures} step(s) differ from the README\n`,
  );
  return failures === 0 ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`readme-test: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
