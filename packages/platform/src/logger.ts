/**
 * A small line logger: `2026-05-09T12:00:00.000Z info  ingest  listening port=7070`. One line per event, to stderr.
 * Credentials in URLs (`redis://:PASSWORD@…`) are redacted in every line, whatever field or message holds them.
 */
import { redactCredentials } from "./redact.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function formatValue(value: string | number | boolean | null): string {
  const text = String(value);
  return /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

export function createLogger(service: string, minLevel: LogLevel = "info", write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const log = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[minLevel]) return;
    let line = `${new Date().toISOString()} ${level.padEnd(5)} ${service.padEnd(7)} ${message}`;
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value !== undefined) line += ` ${key}=${formatValue(value)}`;
    }
    write(`${redactCredentials(line)}\n`);
  };
  return {
    debug: (message, fields) => log("debug", message, fields),
    info: (message, fields) => log("info", message, fields),
    warn: (message, fields) => log("warn", message, fields),
    error: (message, fields) => log("error", message, fields),
  };
}

/** An error's message, with credentials in URLs redacted (it may be answered to a client or stored with a run). */
export function errorMessage(error: unknown): string {
  return redactCredentials(error instanceof Error ? error.message : String(error));
}

/**
 * For errors that repeat while a dependency is down (a reconnect loop): true the first time a message is seen, then
 * again only once `intervalMs` has passed, so an outage logs a line now and then, not one per retry.
 */
export function createRepeatThrottle(intervalMs = 30_000): (message: string) => boolean {
  const lastLogged = new Map<string, number>();
  return function shouldLog(message) {
    const now = Date.now();
    const last = lastLogged.get(message);
    if (last !== undefined && now - last < intervalMs) return false;
    if (lastLogged.size > 100) lastLogged.clear();
    lastLogged.set(message, now);
    return true;
  };
}
