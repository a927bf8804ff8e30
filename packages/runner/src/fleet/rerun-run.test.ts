import { describe, expect, it } from "vitest";
import { withoutSucceededStages } from "./rerun-run.js";

describe("withoutSucceededStages", () => {
  it("leaves out the stages that succeeded and the dependencies on them, keeping the rest of the workflow", () => {
    const workflow = {
      name: "ci",
      concurrency: 2,
      stages: [
        { name: "lint", driver: "shell", run: "true" },
        { name: "build", driver: "shell", run: "true" },
        { name: "test", driver: "shell", run: "false", depends_on: ["build"], retries: 1 },
        { name: "deploy", driver: "shell", run: "true", depends_on: ["lint", "test"] },
      ],
    };
    expect(withoutSucceededStages(workflow, new Set(["lint", "build"]))).toEqual({
      name: "ci",
      concurrency: 2,
      stages: [
        { name: "test", driver: "shell", run: "false", retries: 1 },
        { name: "deploy", driver: "shell", run: "true", depends_on: ["test"] },
      ],
    });
  });
});
