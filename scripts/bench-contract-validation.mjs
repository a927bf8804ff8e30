#!/usr/bin/env node
// How long ingest's check of one cli_invocation entry takes (validateCliInvocation: the ajv validator compiled from
// CliInvocationEventSchema, then the timestamp checks), in µs per entry, on entries shaped as
// examples/telemetry-batch.json. Needs packages/shared built: `npm run build`, then
// `node scripts/bench-contract-validation.mjs [entries]`.
import { readFileSync } from "node:fs";
import { validateCliInvocation } from "../packages/shared/dist/index.js";

const count = Number(process.argv[2] ?? 200_000);
const examples = JSON.parse(readFileSync(new URL("../examples/telemetry-batch.json", import.meta.url), "utf8")).events;
const entries = Array.from({ length: count }, (_, i) => {
  const entry = structuredClone(examples[i % examples.length]);
  entry.insert_id = `entry-${i}`;
  entry.properties.id = `entry-${i}`;
  return entry;
});
const nowMs = Date.parse("2026-05-10T00:00:00.000Z");

function run() {
  let accepted = 0;
  const started = process.hrtime.bigint();
  for (const entry of entries) if (validateCliInvocation(entry, nowMs).ok) accepted += 1;
  const micros = Number(process.hrtime.bigint() - started) / 1000;
  if (accepted !== entries.length) throw new Error(`only ${accepted} of ${entries.length} entries were accepted`);
  return micros / entries.length;
}

run(); // warm-up: let V8 optimize the validator
const rounds = Array.from({ length: 5 }, run).sort((a, b) => a - b);
console.log(`validateCliInvocation: ${count} entries, median ${rounds[2].toFixed(3)} µs/entry (best ${rounds[0].toFixed(3)}, worst ${rounds[4].toFixed(3)})`);
