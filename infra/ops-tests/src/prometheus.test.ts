/**
 * infra/prometheus: the scrape config and alert rules pass `promtool check config`, `promtool check rules` and the
 * rule unit tests (`promtool test rules`). Without promtool these are skipped, except in CI (CI=true), where
 * they fail: CI installs Debian's `prometheus` package (.ci/run). Every alert also needs a unit test case and a
 * runbook section in docs/operations.md.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { INFRA_DIR, REPO_ROOT, checkTools, toolPath } from "./ops-test-support.js";

const PROMETHEUS_DIR = join(INFRA_DIR, "prometheus");
const RULES = join(PROMETHEUS_DIR, "rules/flowmeter.rules.yml");
const RULE_TESTS = join(PROMETHEUS_DIR, "rules/flowmeter.rules.test.yml");

interface RuleFile {
  groups: { name: string; rules: { alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[];
}

interface RuleTestFile {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

function alerts() {
  return (parseYaml(readFileSync(RULES, "utf8")) as RuleFile).groups.flatMap((group) => group.rules.filter((rule) => rule.alert !== undefined));
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const match of markdown.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    anchors.add(
      (match[1] ?? "")
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, "")
        .replace(/ /g, "-"),
    );
  }
  return anchors;
}

describe("alert rules: shape", () => {
  it("every alert has a severity, a summary, a runbook section in docs/operations.md, and a firing unit test", () => {
    const docs = headingAnchors(readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8"));
    const tests = parseYaml(readFileSync(RULE_TESTS, "utf8")) as RuleTestFile;
    const tested = new Set(
      tests.tests.flatMap((test) => (test.alert_rule_test ?? []).filter((check) => check.exp_alerts.length > 0).map((check) => check.alertname)),
    );
    const silent = new Set(
      tests.tests.flatMap((test) => (test.alert_rule_test ?? []).filter((check) => check.exp_alerts.length === 0).map((check) => check.alertname)),
    );
    const found = alerts();
    expect(found.length).toBeGreaterThanOrEqual(9);
    for (const rule of found) {
      const name = rule.alert ?? "";
      expect(["warning", "critical"], `${name} severity`).toContain(rule.labels?.["severity"]);
      expect(rule.annotations?.["summary"], `${name} summary`).toBeTruthy();
      const runbook = rule.annotations?.["runbook"] ?? "";
      expect(runbook, `${name} runbook`).toMatch(/^docs\/operations\.md#/);
      expect(docs, `${name}: docs/operations.md has a section for ${runbook}`).toContain(runbook.split("#")[1]);
      expect(tested, `${name} has a unit test where it fires`).toContain(name);
      expect(silent, `${name} has a unit test where it stays silent`).toContain(name);
    }
    for (const required of [
      "FlowmeterQueueLagHigh",
      "FlowmeterInsertFailures",
      "FlowmeterIngest5xxRate",
      "FlowmeterRejectedRateHigh",
      "FlowmeterRunnerHeartbeatStale",
      "FlowmeterEventsSpooledGrowing",
      "FlowmeterTargetDown",
      "FlowmeterTargetMissing",
      "FlowmeterNoRowsWritten",
    ]) {
      expect(found.map((rule) => rule.alert)).toContain(required);
    }
  });
});

const tools = checkTools(["promtool"]);

describe.skipIf(tools.skip)(`promtool${tools.note}`, () => {
  function promtool(...args: string[]): { status: number | null; output: string } {
    const result = spawnSync(toolPath(tools, "promtool"), args, { cwd: REPO_ROOT, encoding: "utf8", timeout: 30_000 });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  }

  it("check config: prometheus.yml, with the rule files it loads", () => {
    const checked = promtool("check", "config", join(PROMETHEUS_DIR, "prometheus.yml"));
    expect(checked.status, checked.output).toBe(0);
    expect(checked.output).toMatch(/1 rule files found/);
  });

  it("check rules: flowmeter.rules.yml", () => {
    const checked = promtool("check", "rules", RULES);
    expect(checked.status, checked.output).toBe(0);
    expect(checked.output).toContain(`SUCCESS: ${alerts().length} rules found`);
  });

  it("test rules: flowmeter.rules.test.yml", () => {
    const tested = promtool("test", "rules", RULE_TESTS);
    expect(tested.status, tested.output).toBe(0);
    expect(tested.output).toContain("SUCCESS");
  });
});
