import { describe, expect, it } from "vitest";
import { WorkflowValidationError } from "../errors.js";
import { planStages } from "./stage-graph.js";
import { validateWorkflow } from "./validate-workflow.js";

const drivers = ["node", "shell"];

function problems(workflow: unknown): readonly string[] {
  try {
    validateWorkflow(workflow, { drivers });
  } catch (error) {
    expect(error).toBeInstanceOf(WorkflowValidationError);
    return (error as WorkflowValidationError).problems;
  }
  throw new Error("expected the workflow to be rejected");
}

const stage = (name: string, extra: Record<string, unknown> = {}) => ({ name, driver: "shell", run: "true", ...extra });

describe("validateWorkflow", () => {
  it("accepts a valid workflow and returns a clean copy", () => {
    const workflow = validateWorkflow(
      {
        name: "deploy",
        concurrency: 2,
        stages: [stage("build"), stage("test", { depends_on: ["build", "build"], retries: 2, timeout_secs: 600, allow_failure: false, env: { CI: "1" } })],
      },
      { drivers },
    );
    expect(workflow).toEqual({
      name: "deploy",
      concurrency: 2,
      stages: [
        { name: "build", driver: "shell", run: "true" },
        { name: "test", driver: "shell", run: "true", depends_on: ["build"], retries: 2, timeout_secs: 600, allow_failure: false, env: { CI: "1" } },
      ],
    });
  });

  it("takes a retry policy (delay, backoff, cap, exit codes) and names each bad field", () => {
    const retry = { delay_secs: 1.5, backoff_factor: 2, max_delay_secs: 60, on_exit_codes: [75, 75, 137] };
    expect(validateWorkflow({ name: "r", stages: [stage("a", { retries: 3, retry })] }, { drivers }).stages[0]).toEqual({
      ...stage("a"),
      retries: 3,
      retry: { delay_secs: 1.5, backoff_factor: 2, max_delay_secs: 60, on_exit_codes: [75, 137] },
    });
    expect(
      problems({
        name: "r",
        stages: [
          stage("a", { retry: { delay_secs: -1, backoff_factor: 0.5, max_delay_secs: "1m", on_exit_codes: [256], jitter: true } }),
          stage("b", { retry: [] }),
          stage("c", { retry: { on_exit_codes: [] } }),
        ],
      }),
    ).toEqual([
      'stage "a": retry: unknown field "jitter" (known: delay_secs, backoff_factor, max_delay_secs, on_exit_codes)',
      'stage "a": retry.delay_secs must be a number between 0 and 3600',
      'stage "a": retry.backoff_factor must be a number between 1 and 10',
      'stage "a": retry.max_delay_secs must be a number between 0 and 86400',
      'stage "a": retry.on_exit_codes must be a non-empty list of exit codes (integers 0-255)',
      'stage "b": retry must be a map with delay_secs, backoff_factor, max_delay_secs, on_exit_codes',
      'stage "c": retry.on_exit_codes must be a non-empty list of exit codes (integers 0-255)',
    ]);
  });

  it("names the stage and the unknown dependency", () => {
    expect(problems({ name: "w", stages: [stage("build"), stage("test", { depends_on: ["buidl"] })] })).toEqual([
      'stage "test": depends_on names unknown stage "buidl"',
    ]);
  });

  it("names the cycle", () => {
    expect(
      problems({ name: "w", stages: [stage("a", { depends_on: ["c"] }), stage("b", { depends_on: ["a"] }), stage("c", { depends_on: ["b"] }), stage("d")] }),
    ).toEqual(["dependency cycle: a -> c -> b -> a (each stage depends on the next)"]);
  });

  it("rejects a stage depending on itself", () => {
    expect(problems({ name: "w", stages: [stage("a", { depends_on: ["a"] })] })).toEqual(['stage "a": depends_on names the stage itself']);
  });

  it("rejects duplicate names", () => {
    expect(problems({ name: "w", stages: [stage("build"), stage("test"), stage("build")] })).toEqual([
      'stage "build": duplicate stage name (stages[0] and stages[2])',
    ]);
  });

  it("rejects unknown drivers, listing the known ones", () => {
    expect(problems({ name: "w", stages: [stage("a", { driver: "docker" })] })).toEqual(['stage "a": unknown driver "docker" (known: node, shell)']);
  });

  it("rejects missing and mistyped fields, every problem at once", () => {
    expect(
      problems({
        name: "w",
        stages: [
          { name: "a", run: "" },
          { driver: "shell", run: "x" },
          stage("b", { retries: -1, timeout_secs: 0, allow_failure: "yes", env: { CI: 1, "bad-name": "x" }, depends_on: "a" }),
          stage("c", { dependson: ["a"] }),
          "oops",
          stage("has space"),
          stage("yaml-bool", { run: true }),
        ],
      }),
    ).toEqual([
      'stage "a": driver is required (known: node, shell)',
      'stage "a": run is required (a non-empty string)',
      "stages[1]: name is required",
      'stage "b": depends_on must be a list of stage names',
      'stage "b": retries must be an integer between 0 and 100',
      'stage "b": timeout_secs must be a number of seconds above 0 and at most 604800',
      'stage "b": allow_failure must be true or false',
      'stage "b": env.CI must be a string (quote numbers and booleans)',
      'stage "b": env name "bad-name" is not a valid variable name',
      'stage "c": unknown field "dependson" (known: name, driver, run, depends_on, retries, retry, timeout_secs, allow_failure, env)',
      "stages[4]: must be an object with name, driver and run",
      'stages[5]: name "has space" must be 1-128 characters of letters, digits, "_", "." or "-"',
      'stage "yaml-bool": run must be a string; YAML read true as a boolean, quote it ("true")',
    ]);
  });

  it("rejects a bad workflow name, concurrency, unknown keys and empty stages", () => {
    expect(problems({ concurrency: 0, stage: [], stages: [] })).toEqual([
      'workflow: unknown field "stage" (known: name, concurrency, max_concurrent_runs, secrets, stages)',
      'workflow: name is required: 1-128 characters of letters, digits, "_", "." or "-"',
      "workflow: concurrency must be an integer between 1 and 1000",
      "workflow: stages must be a non-empty list",
    ]);
    expect(problems("name: x")).toEqual(["workflow must be an object with name and stages"]);
  });

  it("takes secrets by name from the runner's environment or a file, never from flowmeter's configuration", () => {
    const workflow = validateWorkflow(
      { name: "deploy", secrets: { DEPLOY: { env: "DEPLOY_TOKEN" }, KEY: { file: "keys/deploy.pem" } }, stages: [stage("ship")] },
      { drivers },
    );
    expect(workflow.secrets).toEqual({ DEPLOY: { env: "DEPLOY_TOKEN" }, KEY: { file: "keys/deploy.pem" } });
    expect(
      problems({
        name: "w",
        secrets: {
          A: { env: "REDIS_URL" },
          B: { env: "RUNNER_API_TOKENS" },
          C: { env: "QUEUE_PREFIX" },
          D: { file: "/proc/self/environ" },
          E: { env: "X", file: "y" },
          F: "DEPLOY_TOKEN",
          G: { env: "not a name" },
          "1X": { env: "OK" },
          FLOWMETER_TOKEN: { env: "OK" },
          H: { file: " " },
          SHARED: { env: "OK" },
        },
        stages: [stage("a", { env: { SHARED: "plain" } })],
      }),
    ).toEqual([
      "workflow: secrets.A: env REDIS_URL is flowmeter's configuration, never given to stages",
      "workflow: secrets.B: env RUNNER_API_TOKENS is flowmeter's configuration, never given to stages",
      "workflow: secrets.C: env QUEUE_PREFIX is flowmeter's configuration, never given to stages",
      'workflow: secrets.D: file "/proc/self/environ" is under /proc, /sys or /dev',
      'workflow: secrets.E must be {env: "RUNNER_SIDE_VARIABLE"} or {file: "path"}, exactly one of them',
      'workflow: secrets.F must be {env: "RUNNER_SIDE_VARIABLE"} or {file: "path"}, exactly one of them',
      'workflow: secrets.G: env "not a name" is not a valid variable name',
      'workflow: secret name "1X" is not a valid variable name',
      "workflow: secrets.FLOWMETER_TOKEN: FLOWMETER_ names are the run's own variables",
      "workflow: secrets.H: file must be a non-empty path",
      'stage "a": env.SHARED is also a secret of the workflow; name it once',
    ]);
    expect(problems({ name: "w", secrets: ["A"], stages: [stage("a")] })).toEqual([
      'workflow: secrets must be a map of variable names to {env: "RUNNER_SIDE_VARIABLE"} or {file: "path"}',
    ]);
  });

  it("puts the source in the message", () => {
    expect(() => validateWorkflow({ name: "w", stages: [] }, { drivers, source: "ci.yaml" })).toThrow(/^invalid workflow \(ci\.yaml\):\n  - workflow: stages/);
  });
});

describe("planStages", () => {
  it("gives each stage its level (longest path from a root) and group, in start order", () => {
    const workflow = validateWorkflow(
      { name: "w", stages: [stage("deploy", { depends_on: ["test", "build"] }), stage("test", { depends_on: ["build"] }), stage("build"), stage("lint")] },
      { drivers },
    );
    expect(planStages(workflow).map((plan) => [plan.stage.name, plan.groupId])).toEqual([
      ["build", "g0"],
      ["lint", "g0"],
      ["test", "g1"],
      ["deploy", "g2"],
    ]);
  });
});
