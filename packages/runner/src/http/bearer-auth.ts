import { bearerToken, createSecretMatcher } from "@flowmeter/platform";
import { ApiError } from "@flowmeter/shared";

/**
 * Checks `Authorization: Bearer <token>` against the configured tokens; none configured means no check (config
 * validation allows that only on a loopback host). Throws ApiError UNAUTHORIZED.
 */
export function createBearerAuth(tokens: readonly string[]): (authorization: string | undefined) => void {
  const matchToken = createSecretMatcher(tokens);
  return function checkBearerToken(authorization) {
    if (tokens.length === 0) return;
    const presented = bearerToken(authorization);
    if (presented === undefined) throw new ApiError("UNAUTHORIZED", "missing bearer token; send Authorization: Bearer <token>");
    if (matchToken(presented) < 0) throw new ApiError("UNAUTHORIZED", "invalid bearer token");
  };
}
