#!/usr/bin/env node
/** `npm run bench` (root package.json: build, then this): the bench with this process's environment; exit 0 when every phase was exact. */
import { ConfigError } from "@flowmeter/platform";
import { BENCH_USAGE, bench } from "./bench.js";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(BENCH_USAGE);
  process.exit(0);
}
bench(process.env).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // 78 and 70 as the flowmeter command uses them: invalid configuration, anything else.
    if (error instanceof ConfigError) {
      process.stderr.write(`bench: ${error.message}\n`);
      process.exit(78);
    }
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(70);
  },
);
