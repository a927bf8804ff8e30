/** Where each service's entry point is: the `./main` (and the worker's `./migrate-main`) export of its package. */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export const SERVICE_ENTRY_POINTS = {
  migrate: () => require.resolve("@flowmeter/worker/migrate-main"),
  worker: () => require.resolve("@flowmeter/worker/main"),
  ingest: () => require.resolve("@flowmeter/ingest/main"),
} as const;
