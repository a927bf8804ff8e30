#!/usr/bin/env node
/**
 * Compiles TypeScript for running: each package's src/**\/*.ts (tests excepted) to dist/, one file per file, with
 * esbuild (transpile only, about a second for the whole workspace; tsc took 70 s). Type-checking is separate:
 * `npm run typecheck` (tsc over every package), part of `npm test`.
 *
 *   node scripts/build.mjs                  every package
 *   node scripts/build.mjs packages/worker  one package (what each package's `npm run build` does under turbo)
 */
import { chmodSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".d.ts"))
    .map((entry) => join(entry.parentPath, entry.name));
}

export async function buildPackage(packageDir) {
  const src = join(packageDir, "src");
  const dist = join(packageDir, "dist");
  rmSync(dist, { recursive: true, force: true });
  const entryPoints = sources(src);
  await build({ entryPoints, outdir: dist, outbase: src, format: "esm", platform: "node", target: "node20", sourcemap: true, logLevel: "warning" });
  // Entry points that start with a shebang are commands: make them executable.
  for (const entry of entryPoints) {
    if (!readFileSync(entry, "utf8").startsWith("#!")) continue;
    chmodSync(join(dist, relative(src, entry)).replace(/\.ts$/, ".js"), 0o755);
  }
}

const targets =
  process.argv.length > 2 ? process.argv.slice(2).map((dir) => resolve(dir)) : readdirSync(join(root, "packages")).map((name) => join(root, "packages", name));
await Promise.all(targets.map(buildPackage));
