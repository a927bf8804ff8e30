/**
 * Credentials out of what a process prints: every start line, error and log line that could hold a URL such as
 * `redis://:PASSWORD@host:6379` goes through one of these before it is written.
 */

export const REDACTED = "***";

/**
 * A URL with its password replaced by `***` (a user name without a password is replaced too: `https://TOKEN@host`
 * is how tokens are often passed). Something that is not a URL comes back as `(invalid url)`, never as itself.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = REDACTED;
    else if (parsed.username !== "") parsed.username = REDACTED;
    return parsed.toString();
  } catch {
    return "(invalid url)";
  }
}

/** `scheme://userinfo@` anywhere in a text; userinfo stops at whitespace and at the characters that end it in a URL. */
const URL_USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s/?#@"'<>]*)@/g;

/**
 * Every URL in a free text (an error message, a log line) with its credentials replaced as redactUrl does:
 * `connect to redis://:hunter2@db:6379 failed` → `connect to redis://:***@db:6379 failed`.
 */
export function redactCredentials(text: string): string {
  if (!text.includes("://")) return text;
  return text.replace(URL_USERINFO, (_match, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    const redacted = colon === -1 ? REDACTED : `${userinfo.slice(0, colon)}:${REDACTED}`;
    return `${scheme}${redacted}@`;
  });
}
