#!/usr/bin/env node
// `npm run lint`: fails when the relative imports of the workspaces' src/ folders (root package.json `workspaces`:
// packages/*, infra/ops-tests) form a cycle, and prints it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const IMPORT = /^\s*(?:import|export)\s[^;]*?from\s+["'](\.{1,2}\/[^"']+)["']/gm;

function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const files = workspaces.flatMap((workspace) => {
  try {
    return sources(join(root, workspace, "src"));
  } catch {
    return []; // a workspace without src/
  }
});
const edges = new Map(
  files.map((file) => [
    file,
    [...readFileSync(file, "utf8").matchAll(IMPORT)]
      .map((match) => resolve(dirname(file), match[1].replace(/\.js$/, ".ts")))
      .filter((target) => files.includes(target)),
  ]),
);

const state = new Map(); // file -> "visiting" | "done"
const stack = [];
const cycles = [];
function visit(file) {
  state.set(file, "visiting");
  stack.push(file);
  for (const next of edges.get(file) ?? []) {
    if (state.get(next) === "visiting") cycles.push([...stack.slice(stack.indexOf(next)), next]);
    else if (!state.has(next)) visit(next);
  }
  stack.pop();
  state.set(file, "done");
}
for (const file of files) if (!state.has(file)) visit(file);

if (cycles.length > 0) {
  for (const cycle of cycles) process.stderr.write(`import cycle: ${cycle.map((file) => relative(root, file)).join(" -> ")}\n`);
  process.exit(1);
}
process.stdout.write(`no import cycles among ${files.length} files\n`);
