import { errorMessage } from "@flowmeter/platform";

/**
 * chDB (a 540 MB library) is loaded only for the embedded default, so an installation that talks to a ClickHouse
 * server can leave it out (infra/Dockerfile prunes it).
 */
export async function loadChdb<Module>(load: () => Promise<Module>): Promise<Module> {
  try {
    return await load();
  } catch (error) {
    throw new Error(`embedded ClickHouse needs the chdb package (npm install chdb), or set CLICKHOUSE_URL to a ClickHouse server: ${errorMessage(error)}`);
  }
}
