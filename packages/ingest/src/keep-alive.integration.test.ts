/**
 * Issue 21 item 9: requests reset with ECONNRESET although nothing was killed. They were sent on pooled keep-alive
 * connections at the instant ingest closed them for idleness (node's default: 5 s, closed after 6): such a request
 * reaches a closed socket and is reset unread, so it was never answered 202 and nothing is lost, but the client sees
 * an error. Ingest now keeps idle connections for KEEP_ALIVE_TIMEOUT_MS (65 s); a pooled connection idle for longer
 * than node's default is still open, and a request on it is read and answered.
 */
import { Agent, request } from "node:http";
import { createLogger } from "@flowmeter/platform";
import { deleteQueuePrefix, parentEntry, tempDir, testQueuePrefix, testRedisUrl } from "@flowmeter/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { parseIngestConfig } from "./config.js";
import { KEEP_ALIVE_TIMEOUT_MS, startIngestServer } from "./server.js";

/** POSTs on `agent`; the status, the Keep-Alive header and the client port of the connection used. */
function post(port: number, agent: Agent, body: string): Promise<{ status: number; keepAlive: string | undefined; localPort: number | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/ingest", method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, keepAlive: res.headers["keep-alive"] as string | undefined, localPort: res.socket?.localPort }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("keep-alive connections", () => {
  const data = tempDir("ingest-keep-alive");
  const prefix = testQueuePrefix("ingest-keep-alive");
  afterAll(async () => {
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  it("stay open past node's default idle timeout, so a pooled connection is not closed under a client's request", async () => {
    const server = await startIngestServer(
      parseIngestConfig({ INGEST_PORT: "0", REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: data.path }),
      createLogger("ingest", "error", () => {}),
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await post(server.port, agent, JSON.stringify(parentEntry()));
      expect([first.status, first.keepAlive]).toEqual([202, `timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}`]);
      await new Promise((resolve) => setTimeout(resolve, 6500)); // node's default closes an idle connection after 5 s (+1 s)
      const second = await post(server.port, agent, JSON.stringify(parentEntry()));
      expect(second.status).toBe(202);
      expect(second.localPort).toBe(first.localPort); // the same connection: ingest did not close it
    } finally {
      agent.destroy();
      await server.stop();
    }
  }, 20_000);
});
