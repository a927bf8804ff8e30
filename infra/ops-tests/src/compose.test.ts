/**
 * infra/compose.yaml cannot run here (no Docker engine), so it is validated as configuration: it parses, every
 * service has what it needs, every local path it names exists (bind mounts, the Dockerfile and what it copies,
 * the services' entry points as TypeScript sources), depends_on points at real services with sensible conditions,
 * the environment variables given to flowmeter services are ones their config parsers read, and Prometheus and
 * Grafana provisioning agree with the services' names and ports.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parseIngestConfig } from "@flowmeter/ingest";
import { parseRunnerConfig } from "@flowmeter/runner";
import { EnvReader } from "@flowmeter/platform";
import { parseWorkerConfig, readClickHouseConfig } from "@flowmeter/worker";
import { INFRA_DIR, REPO_ROOT } from "./ops-test-support.js";

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] | string };
  container_name?: string;
  hostname?: string;
  restart?: string;
  init?: boolean;
}

interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const COMPOSE_PATH = join(INFRA_DIR, "compose.yaml");
const composeText = readFileSync(COMPOSE_PATH, "utf8");
// Compose supports YAML merge keys (`<<: *anchor`); the yaml package needs them switched on.
const compose = parseYaml(composeText, { merge: true }) as ComposeFile;
const services = compose.services;

/** The three tiers that scale (`--scale`), each a flowmeter Node service. */
const SCALABLE = ["ingest", "worker", "runner"] as const;

/** Resolves compose interpolation: defaults as given, required variables (`${X:?…}`) as a stand-in value. */
function interpolate(value: string): string {
  return value
    .replace(/\$\{(\w+):-([^}]*)\}/g, (_match, _name: string, fallback: string) => fallback)
    .replace(/\$\{(\w+)(?::\?[^}]*)?\}/g, (_match, name: string) => `set-${name.toLowerCase().replace(/_/g, "-")}`)
    .replace(/\$\$/g, "$");
}

function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((item) => [item.split("=")[0] ?? "", interpolate(item.split("=").slice(1).join("="))]));
  }
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, interpolate(String(value ?? ""))]));
}

function commandOf(service: ComposeService): string[] {
  const command = service.command ?? [];
  return Array.isArray(command) ? command : command.split(/\s+/);
}

/** For `node packages/<pkg>/dist/<file>.js`: the package folder name. */
function flowmeterPackageOf(service: ComposeService): string | undefined {
  const [program, entry] = commandOf(service);
  if (program !== "node" || entry === undefined) return undefined;
  return /^packages\/([\w-]+)\/dist\//.exec(entry)?.[1];
}

function dependsOn(service: ComposeService): Record<string, string> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, "service_started"]));
  return Object.fromEntries(Object.entries(deps).map(([name, spec]) => [name, spec.condition]));
}

/** Environment variable names a config.ts reads: `reader.<method>("NAME"` (and `this.<method>("NAME"` in EnvReader). */
function configVariables(path: string): Set<string> {
  const names = new Set<string>();
  for (const match of readFileSync(path, "utf8").matchAll(/\b(?:reader|this)\.\w+\(\s*"([A-Z][A-Z0-9_]*)"/g)) names.add(match[1] ?? "");
  return names;
}

function knownVariables(pkg: string): Set<string> {
  const shared = configVariables(join(REPO_ROOT, "packages/platform/src/config.ts"));
  return new Set([...shared, ...configVariables(join(REPO_ROOT, `packages/${pkg}/src/config.ts`))]);
}

/** Short volume syntax `source:target[:mode]`. */
function parseVolume(spec: string): { source: string; target: string; bind: boolean } {
  const [source = "", target = ""] = spec.split(":");
  return { source, target, bind: source.startsWith(".") || source.startsWith("/") };
}

/** Short port syntax `[ip:][host:]container`; returns the host part (undefined when none is published). */
function hostPortOf(spec: string): string | undefined {
  const parts = interpolate(spec).split(":");
  if (parts.length === 1) return undefined;
  return parts.length === 3 ? parts[1] : parts[0];
}

describe("infra/compose.yaml", () => {
  it("parses, and has every service of the topology", () => {
    expect(Object.keys(services).sort()).toEqual(["clickhouse", "grafana", "ingest", "migrate", "prometheus", "redis", "runner", "worker"]);
    for (const [name, service] of Object.entries(services)) {
      expect(service.image ?? service.build, `${name} has an image or a build`).toBeDefined();
      if (service.image !== undefined && service.build === undefined)
        expect(service.image, `${name}: third-party images are pinned to a version`).toMatch(/:[\w.-]+$/);
    }
  });

  it("every compose variable is documented in infra/.env.example", () => {
    const documented = new Set([...readFileSync(join(INFRA_DIR, ".env.example"), "utf8").matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]));
    const used = new Set([...composeText.matchAll(/\$\{(\w+)/g)].map((match) => match[1]));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) expect(documented, `${name} is in infra/.env.example`).toContain(name);
  });

  it("ingest, worker and runner scale: no container_name or hostname, and no fixed host port", () => {
    for (const name of SCALABLE) {
      const service = services[name];
      expect(service, name).toBeDefined();
      expect(service?.container_name, `${name} container_name`).toBeUndefined();
      expect(service?.hostname, `${name} hostname`).toBeUndefined();
      for (const spec of service?.ports ?? []) {
        const host = hostPortOf(spec);
        if (host === undefined || host === "") continue;
        const range = /^(\d+)-(\d+)$/.exec(host);
        expect(range, `${name} publishes ${spec}: a fixed host port collides when scaled; use a range or none`).not.toBeNull();
        expect(Number(range?.[2]) - Number(range?.[1]), `${name} ${spec}: a range of several ports`).toBeGreaterThan(0);
      }
    }
  });

  it("depends_on names real services, and waits for health or completion where it matters", () => {
    const allowed = ["service_started", "service_healthy", "service_completed_successfully"];
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, condition] of Object.entries(dependsOn(service))) {
        const target = services[dependency];
        expect(target, `${name} depends on ${dependency}, which exists`).toBeDefined();
        expect(allowed, `${name} -> ${dependency} condition`).toContain(condition);
        if (condition === "service_healthy") expect(target?.healthcheck, `${dependency} has a healthcheck (${name} waits for it)`).toBeDefined();
        if (condition === "service_completed_successfully") expect(target?.restart, `${dependency} is one-shot`).toBe("no");
      }
    }
    for (const name of SCALABLE) {
      expect(dependsOn(services[name] ?? {}), `${name} waits for migrations`).toMatchObject({
        migrate: "service_completed_successfully",
        redis: "service_healthy",
      });
    }
    expect(dependsOn(services["migrate"] ?? {})).toEqual({ clickhouse: "service_healthy" });
  });

  it("every local path exists: bind mounts, build context, Dockerfile and what it copies", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const spec of service.volumes ?? []) {
        const volume = parseVolume(spec);
        if (volume.bind) {
          expect(isAbsolute(volume.source), `${name}: ${spec} is relative, so the file works on any host`).toBe(false);
          expect(existsSync(resolve(INFRA_DIR, volume.source)), `${name}: ${volume.source} exists`).toBe(true);
        } else {
          expect(Object.keys(compose.volumes ?? {}), `${name}: named volume ${volume.source} is declared`).toContain(volume.source);
        }
      }
      if (service.build) {
        const context = resolve(INFRA_DIR, service.build.context);
        expect(context, `${name}: the build context is the repository root`).toBe(REPO_ROOT);
        const dockerfile = resolve(context, service.build.dockerfile ?? "Dockerfile");
        expect(existsSync(dockerfile), `${name}: ${dockerfile} exists`).toBe(true);
      }
    }
  });

  it("the Dockerfile copies paths that exist and that its .dockerignore lets through", () => {
    const dockerfilePath = join(INFRA_DIR, "Dockerfile");
    const ignore = readFileSync(`${dockerfilePath}.dockerignore`, "utf8")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"));
    const copies = readFileSync(dockerfilePath, "utf8")
      .split("\n")
      .filter((line) => /^COPY\s/.test(line) && !line.includes("--from="))
      .map((line) => line.trim().split(/\s+/).slice(1, -1));
    expect(copies.length).toBeGreaterThan(0);
    for (const sources of copies) {
      for (const source of sources) {
        expect(existsSync(join(REPO_ROOT, source)), `COPY ${source} exists`).toBe(true);
        const top = source.split("/")[0] ?? "";
        if (ignore.includes(top)) expect(ignore, `COPY ${source}: re-included in the .dockerignore`).toContain(`!${source}`);
      }
    }
    expect(ignore).toContain("**/node_modules");
  });

  it("flowmeter services run entry points that exist, with environment variables their config parsers read", () => {
    const seen = new Set<string>();
    for (const [name, service] of Object.entries(services)) {
      const pkg = flowmeterPackageOf(service);
      if (pkg === undefined) continue;
      seen.add(name);
      const entry = commandOf(service)[1] ?? "";
      const source = entry.replace(/\/dist\//, "/src/").replace(/\.js$/, ".ts");
      expect(existsSync(join(REPO_ROOT, source)), `${name}: ${entry} is built from ${source}`).toBe(true);
      const known = knownVariables(pkg);
      for (const variable of Object.keys(environmentOf(service)))
        expect(known, `${name}: ${variable} is read by packages/${pkg}/src/config.ts`).toContain(variable);
    }
    expect([...seen].sort()).toEqual(["ingest", "migrate", "runner", "worker"]);
  });

  it("each flowmeter service's environment passes its own config parser", () => {
    const env = (name: string) => environmentOf(services[name] ?? {});
    const ingest = parseIngestConfig(env("ingest"));
    expect(ingest).toMatchObject({ host: "0.0.0.0", port: 7070, ignoredHost: undefined });
    expect(ingest.apiKeys.length).toBeGreaterThan(0);
    expect(parseWorkerConfig(env("worker"))).toMatchObject({ http: { host: "0.0.0.0", port: 7072 }, clickhouse: { url: env("worker")["CLICKHOUSE_URL"] } });
    expect(parseRunnerConfig(env("runner"), "/app")).toMatchObject({ host: "0.0.0.0", port: 7071, dataDir: "/var/lib/flowmeter" });
    const reader = new EnvReader(env("migrate"));
    const migrate = reader.finish({ clickhouse: readClickHouseConfig(reader), logLevel: reader.logLevel() });
    expect(migrate.clickhouse.url).toBe(env("migrate")["CLICKHOUSE_URL"]);
  });

  it("flowmeter services reach Redis and ClickHouse by service name, and listen beyond loopback", () => {
    const env = (name: string) => environmentOf(services[name] ?? {});
    for (const name of SCALABLE) {
      expect(new URL(env(name)["REDIS_URL"] ?? "").hostname, `${name} REDIS_URL`).toBe("redis");
      expect(services[name]?.init, `${name}: an init process reaps children and forwards signals`).toBe(true);
    }
    for (const name of ["migrate", "worker"]) {
      const url = new URL(env(name)["CLICKHOUSE_URL"] ?? "");
      expect(url.hostname, `${name} CLICKHOUSE_URL (else each container would embed its own chDB)`).toBe("clickhouse");
      expect(url.port).toBe("8123");
    }
    // Without API keys ingest binds loopback only and nobody outside the container could reach it.
    expect(env("ingest")["INGEST_API_KEYS"]).toBeTruthy();
    expect(env("ingest")["INGEST_HOST"]).toBe("0.0.0.0");
    expect(env("worker")["WORKER_HOST"]).toBe("0.0.0.0");
    expect(env("runner")["RUNNER_HOST"]).toBe("0.0.0.0");
  });

  it("Redis keeps the queue durable and never evicts it", () => {
    const command = commandOf(services["redis"] ?? {})
      .map(interpolate)
      .join(" ");
    expect(command).toContain("--appendonly yes");
    expect(command).toContain("--appendfsync everysec");
    expect(command).toContain("--maxmemory-policy noeviction");
    expect(services["clickhouse"]?.image).toMatch(/^clickhouse\/clickhouse-server:/);
  });

  it("Prometheus scrapes each tier by its compose service name and port", () => {
    const prometheus = services["prometheus"] ?? {};
    const mounts = (prometheus.volumes ?? []).map(parseVolume);
    expect(mounts).toContainEqual(expect.objectContaining({ source: "./prometheus", target: "/etc/prometheus" }));
    expect(commandOf(prometheus)).toContain("--config.file=/etc/prometheus/prometheus.yml");
    const config = parseYaml(readFileSync(join(INFRA_DIR, "prometheus/prometheus.yml"), "utf8")) as {
      rule_files: string[];
      scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[];
    };
    for (const ruleGlob of config.rule_files)
      expect(isAbsolute(ruleGlob), `${ruleGlob}: relative to prometheus.yml, so it works mounted and in the repo`).toBe(false);
    const portVariable: Record<string, string> = { ingest: "INGEST_PORT", worker: "WORKER_METRICS_PORT", runner: "RUNNER_PORT" };
    for (const name of SCALABLE) {
      const job = config.scrape_configs.find((candidate) => candidate.job_name === name);
      const discovery = job?.dns_sd_configs?.[0];
      expect(discovery?.names, `job ${name} discovers every replica of service ${name}`).toEqual([name]);
      const port = environmentOf(services[name] ?? {})[portVariable[name] ?? ""];
      expect(String(discovery?.port), `job ${name} port`).toBe(port);
      expect(services[name]?.expose, `${name} exposes ${port}`).toContain(port);
      const health = JSON.stringify(services[name]?.healthcheck?.test);
      expect(health, `${name} healthcheck uses its port`).toContain(`:${port}/`);
    }
  });

  it("Grafana installs the ClickHouse plugin and mounts the provisioning its datasources and dashboards need", () => {
    const grafana = services["grafana"] ?? {};
    const env = environmentOf(grafana);
    expect(env["GF_INSTALL_PLUGINS"]).toContain("grafana-clickhouse-datasource");
    const mounts = (grafana.volumes ?? []).map(parseVolume);
    expect(mounts).toContainEqual(expect.objectContaining({ source: "./grafana/provisioning", target: "/etc/grafana/provisioning" }));
    const dashboardsMount = mounts.find((mount) => mount.source === "./grafana/dashboards");
    expect(dashboardsMount).toBeDefined();

    const provider = parseYaml(readFileSync(join(INFRA_DIR, "grafana/provisioning/dashboards/flowmeter.yaml"), "utf8")) as {
      providers: { options: { path: string } }[];
    };
    expect(provider.providers[0]?.options.path, "the dashboard provider reads the mounted folder").toBe(dashboardsMount?.target);
    const home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] ?? "";
    expect(existsSync(join(INFRA_DIR, "grafana/dashboards", relative(dashboardsMount?.target ?? "", home))), `home dashboard ${home} exists`).toBe(true);

    const datasourcesText = readFileSync(join(INFRA_DIR, "grafana/provisioning/datasources/flowmeter.yaml"), "utf8");
    const datasources = parseYaml(datasourcesText) as {
      datasources: { uid: string; type: string; url?: string; jsonData?: Record<string, unknown>; secureJsonData?: Record<string, string> }[];
    };
    const clickhouse = datasources.datasources.find((source) => source.type === "grafana-clickhouse-datasource");
    expect(clickhouse?.jsonData).toMatchObject({ host: "clickhouse", port: 9000, protocol: "native", defaultDatabase: "flowmeter", username: "grafana" });
    expect(services[String(clickhouse?.jsonData?.["host"])], "the ClickHouse datasource host is a compose service").toBeDefined();
    const withoutComments = datasourcesText.replace(/^\s*#.*$/gm, "");
    for (const match of withoutComments.matchAll(/\$\{?(\w+)/g)) expect(Object.keys(env), `grafana gets $${match[1]} for its provisioning`).toContain(match[1]);
    const prometheus = datasources.datasources.find((source) => source.type === "prometheus");
    const url = new URL(prometheus?.url ?? "");
    expect(services[url.hostname], "the Prometheus datasource host is a compose service").toBeDefined();
    expect(url.port).toBe("9090");
  });

  it("gives each service a ClickHouse user with no more than it needs", () => {
    const mounts = (services["clickhouse"]?.volumes ?? []).map(parseVolume);
    const usersFile = mounts.find((mount) => mount.target.startsWith("/etc/clickhouse-server/users.d/"));
    expect(usersFile, "ClickHouse gets the users file").toBeDefined();
    const usersXml = readFileSync(resolve(INFRA_DIR, usersFile?.source ?? ""), "utf8");
    const userBlock = (name: string) => new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(usersXml)?.[1] ?? "";
    const grants = (name: string) => [...userBlock(name).matchAll(/<query>([^<]+)<\/query>/g)].map((match) => match[1]);
    expect(grants("grafana")).toEqual([
      "GRANT SELECT ON flowmeter.*",
      "GRANT SELECT ON system.databases",
      "GRANT SELECT ON system.tables",
      "GRANT SELECT ON system.columns",
    ]);
    expect(usersXml).toMatch(/<grafana_readonly>[\s\S]*<readonly>1<\/readonly>/);
    expect(userBlock("grafana")).toContain("<profile>grafana_readonly</profile>");
    expect(grants("flowmeter_writer")).toEqual(["GRANT SELECT, INSERT ON flowmeter.*"]);
    const clickhouseEnv = Object.keys(environmentOf(services["clickhouse"] ?? {}));
    for (const match of usersXml.matchAll(/from_env="(\w+)"/g)) expect(clickhouseEnv, `the clickhouse service gets ${match[1]}`).toContain(match[1]);

    const accessFile = mounts.find((mount) => mount.target.startsWith("/etc/clickhouse-server/config.d/"));
    const accessXml = readFileSync(resolve(INFRA_DIR, accessFile?.source ?? ""), "utf8");
    expect(accessXml).toContain("<select_from_system_db_requires_grant>true</select_from_system_db_requires_grant>");

    const userOf = (service: string) => new URL(environmentOf(services[service] ?? {})["CLICKHOUSE_URL"] ?? "").username;
    expect(userOf("worker")).toBe("flowmeter_writer");
    expect(userOf("migrate")).toBe("flowmeter");
  });

  it("pins what it installs (the Grafana plugin's version, a supported Node image) and leaves chDB out", () => {
    expect(environmentOf(services["grafana"] ?? {})["GF_INSTALL_PLUGINS"]).toMatch(/^grafana-clickhouse-datasource \d+\.\d+\.\d+$/);
    const dockerfile = readFileSync(join(INFRA_DIR, "Dockerfile"), "utf8");
    for (const match of dockerfile.matchAll(/^FROM node:(\d+)/gm)) expect(Number(match[1])).toBeGreaterThanOrEqual(22);
    // Every service in compose talks to the ClickHouse server: chDB (optional) stays out of the image.
    expect(dockerfile).toMatch(/npm prune --omit=dev --omit=optional/);
  });

  it("mounted files sit in infra/, next to compose.yaml", () => {
    for (const service of Object.values(services)) {
      for (const volume of (service.volumes ?? []).map(parseVolume).filter((candidate) => candidate.bind)) {
        expect(relative(INFRA_DIR, resolve(INFRA_DIR, volume.source)).startsWith(".."), volume.source).toBe(false);
      }
    }
    expect(dirname(COMPOSE_PATH)).toBe(INFRA_DIR);
  });
});
