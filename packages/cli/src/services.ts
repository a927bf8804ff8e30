/** Where each service's entry point is, resolved through the workspace packages. */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

function distOf(pkg: string): string {
  return dirname(require.resolve(pkg));
}

export const SERVICE_ENTRY_POINTS = {
  migrate: () => join(distOf("@flowmeter/worker"), "migrate-main.js"),
  worker: () => join(distOf("@flowmeter/worker"), "main.js"),
  ingest: () => join(distOf("@flowmeter/ingest"), "main.js"),
  runner: () => join(distOf("@flowmeter/runner"), "main.js"),
} as const;

export type ServiceName = keyof typeof SERVICE_ENTRY_POINTS;
