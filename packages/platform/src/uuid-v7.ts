import { randomBytes } from "node:crypto";

let lastUuidMs = -1;
let uuidCounter = 0;

/**
 * A UUID v7: 48-bit Unix ms timestamp, then a 12-bit counter (rand_a, RFC 9562 §6.2 method 1) that makes ids
 * from one process sort in creation order within a millisecond, then 62 random bits.
 */
export function uuidV7(nowMs: number = Date.now()): string {
  let ms = Math.max(nowMs, lastUuidMs);
  if (ms === lastUuidMs) {
    uuidCounter += 1;
    if (uuidCounter > 0xfff) {
      ms += 1;
      uuidCounter = 0;
    }
  } else {
    uuidCounter = randomBytes(2).readUInt16BE(0) & 0x3ff; // random start, headroom for increments
  }
  lastUuidMs = ms;
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (uuidCounter >> 8);
  bytes[7] = uuidCounter & 0xff;
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
