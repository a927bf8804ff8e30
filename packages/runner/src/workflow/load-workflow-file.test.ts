import { afterAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@flowmeter/test-utils";
import { WorkflowValidationError } from "../errors.js";
import { loadWorkflowFile } from "./load-workflow-file.js";

describe("loadWorkflowFile", () => {
  const dir = tempDir("workflow-files");
  afterAll(() => dir.remove());
  const file = (name: string, text: string): string => {
    const path = join(dir.path, name);
    writeFileSync(path, text);
    return path;
  };

  it("reads YAML as in docs/spec.md §6a", async () => {
    const path = file(
      "deploy.yaml",
      `name: deploy
stages:
  - name: build
    driver: shell            # shell: sh -c run
    run: echo building
  - name: test
    driver: shell
    run: ./test.sh
    depends_on: [build]
    retries: 2
    timeout_secs: 600
    allow_failure: false
`,
    );
    const workflow = await loadWorkflowFile(path);
    expect(workflow.stages[1]).toEqual({
      name: "test",
      driver: "shell",
      run: "./test.sh",
      depends_on: ["build"],
      retries: 2,
      timeout_secs: 600,
      allow_failure: false,
    });
  });

  it("reads JSON", async () => {
    const path = file("w.json", JSON.stringify({ name: "w", concurrency: 1, stages: [{ name: "a", driver: "node", run: "console.log(1)" }] }));
    expect((await loadWorkflowFile(path)).concurrency).toBe(1);
  });

  it("reports parse errors and invalid fields with the file name", async () => {
    await expect(loadWorkflowFile(file("bad.json", "{ nope"))).rejects.toThrow(/^invalid workflow \(.*bad\.json\):\n  - cannot parse JSON: /);
    await expect(loadWorkflowFile(file("dup.yaml", "name: a\nname: b\nstages: []\n"))).rejects.toThrow(/cannot parse YAML: .*unique/i);
    const error = await loadWorkflowFile(file("typo.yml", "name: w\nstages:\n  - {name: test, driver: shell, run: x, depends_on: [buidl]}\n")).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(WorkflowValidationError);
    expect((error as WorkflowValidationError).problems).toEqual(['stage "test": depends_on names unknown stage "buidl"']);
  });

  it("accepts other drivers when told", async () => {
    const path = file("custom.yaml", "name: w\nstages:\n  - {name: a, driver: docker, run: x}\n");
    await expect(loadWorkflowFile(path)).rejects.toThrow(/unknown driver "docker"/);
    await expect(loadWorkflowFile(path, { drivers: ["docker"] })).resolves.toMatchObject({ name: "w" });
  });
});
