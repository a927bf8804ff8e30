import { resolve } from "node:path";
/**
 * Environment parsing shared by every service: each service's `config.ts` reads its variables through
 * one EnvReader, which collects every problem and throws them together, so a bad start lists them all.
 */
import type { LogLevel } from "./logger.js";
import { redactCredentials } from "./redact.js";

export type EnvSource = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
  }
}

interface IntOptions {
  min?: number;
  max?: number;
}

export class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: EnvSource) {}

  private raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  }

  /** Records a problem found by a cross-field rule. */
  problem(message: string): void {
    this.problems.push(message);
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  int(name: string, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER }: IntOptions = {}): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^-?\d+$/.test(value)) {
      this.problems.push(`${name}=${JSON.stringify(value)}: expected an integer`);
      return fallback;
    }
    const parsed = Number(value);
    if (parsed < min || parsed > max) {
      this.problems.push(`${name}=${value}: expected an integer between ${min} and ${max}`);
      return fallback;
    }
    return parsed;
  }

  port(name: string, fallback: number): number {
    return this.int(name, fallback, { min: 0, max: 65535 });
  }

  /** Strict: only true/false/1/0 (case-insensitive); "no" or "off" are errors rather than a silent true. */
  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    this.problems.push(`${name}=${JSON.stringify(value)}: expected true, false, 1 or 0`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    this.problems.push(`${name}=${JSON.stringify(value)}: expected one of ${allowed.join(", ")}`);
    return fallback;
  }

  /** Comma-separated list; empty items dropped. */
  list(name: string): string[] {
    const value = this.raw(name);
    return value === undefined
      ? []
      : value
          .split(",")
          .map((item) => item.trim())
          .filter((item) => item !== "");
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    try {
      const parsed = new URL(value);
      if (!protocols.includes(parsed.protocol)) {
        this.problems.push(`${name}=${JSON.stringify(redactCredentials(value))}: expected a ${protocols.join(" or ")} URL`);
        return undefined;
      }
      return value;
    } catch {
      this.problems.push(`${name}=${JSON.stringify(redactCredentials(value))}: not a valid URL`);
      return undefined;
    }
  }

  logLevel(): LogLevel {
    return this.oneOf("LOG_LEVEL", ["debug", "info", "warn", "error"], "info");
  }

  /** Returns the parsed config, or throws one ConfigError naming every problem found. */
  finish<T>(config: T): T {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
    return config;
  }
}

export interface RedisConfig {
  /** redis:// URL; undefined means "not set", which `npm start` may answer by launching a private redis-server. */
  url: string | undefined;
  /** BullMQ key prefix; tests use their own so runs don't collide. */
  queuePrefix: string;
  /** FLOWMETER_PARTITIONS: how many queues the client-telemetry stream is cut into (shared's queues.ts). */
  partitions: number;
}

export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/** FLOWMETER_DATA_DIR (default `./.flowmeter`) as an absolute path; every service keeps its local state under it. */
export function readDataDir(reader: EnvReader, cwd: string = process.cwd()): string {
  return resolve(cwd, reader.string("FLOWMETER_DATA_DIR", "./.flowmeter"));
}

export function readRedisConfig(reader: EnvReader): RedisConfig {
  return {
    url: reader.url("REDIS_URL", ["redis:", "rediss:"]),
    queuePrefix: reader.string("QUEUE_PREFIX", "flowmeter"),
    // 64: shared's MAX_PARTITIONS (platform imports no contracts).
    partitions: reader.int("FLOWMETER_PARTITIONS", 1, { min: 1, max: 64 }),
  };
}

/** True for addresses only this host can reach: `localhost`, `::1`, 127.0.0.0/8. Services refuse to listen beyond them unauthenticated. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
