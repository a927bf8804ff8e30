export { childEntry, legacyEntry, parentEntry } from "./fixtures.js";
export { deleteQueuePrefix, testQueuePrefix, testRedisUrl } from "./redis.js";
export { tempDir } from "./temp-dir.js";
export { waitFor } from "./wait-for.js";
export { freePort } from "./free-port.js";
export { startPrivateRedis, type PrivateRedis } from "./private-redis.js";
export { postIngest } from "./post-ingest.js";
export { openScratchDatabase, type ScratchDatabase, type ScratchDatabaseWorker } from "./scratch-database.js";
