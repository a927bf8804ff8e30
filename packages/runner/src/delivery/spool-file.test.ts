import { readdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "@flowmeter/platform";
import { tempDir } from "@flowmeter/test-utils";
import { SpoolFile } from "@flowmeter/platform";
import type { SpoolItem } from "./event-publisher.js";

const HOST = hostname().replace(/[^A-Za-z0-9.]/g, "_");
/** A pid no process has (above Linux's pid_max). */
const GONE_PID = 4_999_999;

describe("SpoolFile.open", () => {
  const dir = tempDir("spool-file");
  afterAll(() => dir.remove());

  it("adopts the spools of gone runners of this host, including one a gone runner was adopting", async () => {
    const line = (seq: number) =>
      `${JSON.stringify({ sample: { kind: "host", run_id: "r", attempt_id: "a", seq, timestamp_ms: 1, stage_name: "", host: { rss_bytes: 1, cpu_percent: 0, io_read_bytes: 0, io_write_bytes: 0 } } })}\n`;
    writeFileSync(join(dir.path, `runner-${HOST}-${GONE_PID}.jsonl`), line(1));
    writeFileSync(join(dir.path, `runner-${HOST}-${GONE_PID - 1}.jsonl.adopting`), line(2) + line(3));
    writeFileSync(join(dir.path, `runner-${HOST}-${process.ppid}.jsonl`), line(4)); // a live runner's: not adopted
    const spool = new SpoolFile<SpoolItem>(
      dir.path,
      createLogger("test", "error", () => {}),
      { owner: "runner" },
    );
    expect(await spool.open()).toBe(3);
    expect(readdirSync(dir.path).sort()).toEqual([`runner-${HOST}-${process.pid}.jsonl`, `runner-${HOST}-${process.ppid}.jsonl`].sort());
  });
});
