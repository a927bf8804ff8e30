#!/usr/bin/env node
// The `flowmeter` command as npm links it. This file is in the repository, so the link exists right after `npm ci`;
// on first use, before anything is built, it builds the workspace (scripts/build.mjs, about a second).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write("flowmeter: first run: building the workspace (node scripts/build.mjs)\n");
  const built = spawnSync(process.execPath, [fileURLToPath(new URL("../../../scripts/build.mjs", import.meta.url))], { stdio: "inherit" });
  if (built.status !== 0) process.exit(70);
}
await import(main.href);
