import { CliError } from "./cli-error.js";

/** `flowmeter query "SELECT …"`: runs a read-only query through the worker (which owns embedded chDB). */
export async function query(sql: string, env: NodeJS.ProcessEnv): Promise<number> {
  const base = env["WORKER_URL"] ?? `http://127.0.0.1:${env["WORKER_METRICS_PORT"] ?? "7072"}`;
  const response = await fetch(`${base}/query`, { method: "POST", body: sql }).catch((error: unknown) => {
    throw new CliError(`the worker at ${base} does not answer (${String(error)}); is flowmeter running (npm start)?`);
  });
  const text = await response.text();
  if (!response.ok) {
    process.stderr.write(`${text}\n`);
    return 1;
  }
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  return 0;
}
