import { createHash, timingSafeEqual } from "node:crypto";

function digest(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

/**
 * Matches a presented secret (API key, bearer token) against the configured ones; returns the index of the match,
 * or -1. Digests give equal lengths for timingSafeEqual, and every secret is compared, so timing reveals neither
 * whether nor which one matched.
 */
export function createSecretMatcher(secrets: readonly string[]): (presented: string) => number {
  const digests = secrets.map(digest);
  return function matchSecret(presented) {
    const presentedDigest = digest(presented);
    let match = -1;
    digests.forEach((candidate, index) => {
      if (timingSafeEqual(candidate, presentedDigest) && match < 0) match = index;
    });
    return match;
  };
}

/** The token of an `Authorization: Bearer <token>` header, if that is what it holds. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
}
