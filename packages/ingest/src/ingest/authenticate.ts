import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { ApiError } from "@flowmeter/shared";

/**
 * Checks `x-api-key: <key>` (current swamp clients) or `Authorization: Bearer <key>` (older clients) against the
 * configured keys. Returns the caller's identity for rate limiting: the key's position in the list, or the remote
 * address when no keys are configured. Throws ApiError UNAUTHORIZED for a missing or wrong key.
 */
export function createAuthenticate(apiKeys: readonly string[]): (headers: IncomingHttpHeaders, remoteAddress: string | undefined) => string {
  const keyDigests = apiKeys.map(digest);
  return function authenticate(headers, remoteAddress) {
    if (keyDigests.length === 0) return `address:${remoteAddress ?? "unknown"}`;
    const presented = presentedKey(headers);
    if (presented === undefined) {
      throw new ApiError("UNAUTHORIZED", "missing API key; send x-api-key: <key> or Authorization: Bearer <key>");
    }
    // Hashing gives equal lengths for timingSafeEqual; every key is compared so timing does not reveal which one matched.
    const presentedDigest = digest(presented);
    let match = -1;
    keyDigests.forEach((keyDigest, index) => {
      if (timingSafeEqual(keyDigest, presentedDigest) && match < 0) match = index;
    });
    if (match < 0) throw new ApiError("UNAUTHORIZED", "invalid API key");
    return `key:${match}`;
  };
}

function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const apiKey = headers["x-api-key"];
  if (typeof apiKey === "string" && apiKey.trim() !== "") return apiKey.trim();
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? "");
  return match?.[1];
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}
