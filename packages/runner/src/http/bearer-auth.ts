import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "@flowmeter/shared";

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/**
 * Checks `Authorization: Bearer <token>` against the configured tokens; none configured means no check (config
 * validation allows that only on a loopback host). Throws ApiError UNAUTHORIZED. Digests give equal lengths for
 * timingSafeEqual, and every token is compared, so timing does not reveal which one matched.
 */
export function createBearerAuth(tokens: readonly string[]): (authorization: string | undefined) => void {
  const digests = tokens.map(digest);
  return function checkBearerToken(authorization) {
    if (digests.length === 0) return;
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
    if (presented === undefined) throw new ApiError("UNAUTHORIZED", "missing bearer token; send Authorization: Bearer <token>");
    const presentedDigest = digest(presented);
    let matched = false;
    for (const candidate of digests) matched = timingSafeEqual(candidate, presentedDigest) || matched;
    if (!matched) throw new ApiError("UNAUTHORIZED", "invalid bearer token");
  };
}
