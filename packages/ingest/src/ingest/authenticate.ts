import type { IncomingHttpHeaders } from "node:http";
import { bearerToken, createSecretMatcher } from "@flowmeter/platform";
import { ApiError } from "@flowmeter/shared";

/**
 * Checks `x-api-key: <key>` (current swamp clients) or `Authorization: Bearer <key>` (older clients) against the
 * configured keys. Returns the caller's identity for rate limiting: the key's position in the list, or the remote
 * address when no keys are configured. Throws ApiError UNAUTHORIZED for a missing or wrong key.
 */
export function createAuthenticate(apiKeys: readonly string[]): (headers: IncomingHttpHeaders, remoteAddress: string | undefined) => string {
  const matchKey = createSecretMatcher(apiKeys);
  return function authenticate(headers, remoteAddress) {
    if (apiKeys.length === 0) return `address:${remoteAddress ?? "unknown"}`;
    const presented = presentedKey(headers);
    if (presented === undefined) {
      throw new ApiError("UNAUTHORIZED", "missing API key; send x-api-key: <key> or Authorization: Bearer <key>");
    }
    const match = matchKey(presented);
    if (match < 0) throw new ApiError("UNAUTHORIZED", "invalid API key");
    return `key:${match}`;
  };
}

function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const apiKey = headers["x-api-key"];
  if (typeof apiKey === "string" && apiKey.trim() !== "") return apiKey.trim();
  return bearerToken(headers.authorization);
}
