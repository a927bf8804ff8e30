/**
 * Where each service's entry point is: the `./main` (and the worker's `./migrate-main`) export of its package, so
 * the CLI reaches nothing of theirs that their package.json `exports` do not offer.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export const SERVICE_ENTRY_POINTS = {
  migrate: () => require.resolve("@flowmeter/worker/migrate-main"),
  worker: () => require.resolve("@flowmeter/worker/main"),
  ingest: () => require.resolve("@flowmeter/ingest/main"),
  runner: () => require.resolve("@flowmeter/runner/main"),
} as const;

export type ServiceName = keyof typeof SERVICE_ENTRY_POINTS;
