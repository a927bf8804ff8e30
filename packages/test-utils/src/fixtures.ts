import { randomUUID } from "node:crypto";
import type { CliInvocationEvent } from "@flowmeter/shared";

/** A parent entry exactly as the current swamp CLI sends it (docs/swamp-telemetry.md §5). */
export function parentEntry(
  overrides: { id?: string; startedAt?: Date; durationMs?: number; status?: "success" | "error" | "user_error" } = {},
): CliInvocationEvent {
  const id = overrides.id ?? randomUUID();
  const startedAt = overrides.startedAt ?? new Date();
  const durationMs = overrides.durationMs ?? 4321;
  const status = overrides.status ?? "success";
  return {
    event: "cli_invocation",
    distinct_id: "user-uuid-1111",
    insert_id: id,
    properties: {
      id,
      invocation: { command: "workflow", args: ["<REDACTED>"], optionKeys: ["--input"], globalOptions: ["--json"], subcommand: "run" },
      result: status === "success" ? { status, exitCode: 0 } : { status, exitCode: 1, errorType: "Error", errorMessage: "boom" },
      startedAt: startedAt.toISOString(),
      completedAt: new Date(startedAt.getTime() + durationMs).toISOString(),
      durationMs,
      swampVersion: "20260509.120000.0",
      denoVersion: "2.3.1",
      platform: "linux",
      invocationContext: { agentSessionDetected: true, isInteractive: false, externalDatastoreConfigured: false },
      $repo_id: "repo-uuid-2222",
    },
  };
}

/** A child entry (one workflow step that ran a model method), linked to its parent. */
export function childEntry(
  parentId: string,
  overrides: {
    id?: string;
    driverKey?: "executor" | "driver";
    driver?: string;
    workflowName?: string;
    stepName?: string;
    status?: "success" | "error" | "user_error";
    durationMs?: number;
    startedAt?: Date;
  } = {},
): CliInvocationEvent {
  const id = overrides.id ?? randomUUID();
  const startedAt = overrides.startedAt ?? new Date();
  const durationMs = overrides.durationMs ?? 1250;
  const status = overrides.status ?? "error";
  return {
    event: "cli_invocation",
    distinct_id: "user-uuid-1111",
    insert_id: id,
    properties: {
      id,
      invocation: { command: "model", args: ["run", "<REDACTED>", "execute"], optionKeys: [], globalOptions: [], subcommand: "method" },
      result: status === "success" ? { status, exitCode: 0 } : { status, exitCode: 1, errorType: "Error", errorMessage: "command exited with code 1" },
      startedAt: startedAt.toISOString(),
      completedAt: new Date(startedAt.getTime() + durationMs).toISOString(),
      durationMs,
      swampVersion: "20260509.120000.0",
      denoVersion: "2.3.1",
      platform: "linux",
      parentInvocationId: parentId,
      workflowContext: {
        workflowName: overrides.workflowName ?? "deploy",
        runId: "9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a",
        jobName: "build",
        stepName: overrides.stepName ?? "validate",
        modelType: "command/shell",
        [overrides.driverKey ?? "executor"]: overrides.driver ?? "loopback",
      },
      $repo_id: "repo-uuid-2222",
    },
  };
}

/** An entry from an old client: no insert_id, invocationContext, parentInvocationId or workflowContext. */
export function legacyEntry(overrides: { id?: string } = {}): CliInvocationEvent {
  const id = overrides.id ?? randomUUID();
  const startedAt = new Date();
  return {
    event: "cli_invocation",
    distinct_id: "user-uuid-3333",
    properties: {
      id,
      invocation: { command: "model", subcommand: "create", args: ["shell", "<REDACTED>"], optionKeys: [], globalOptions: [] },
      result: { status: "success", exitCode: 0 },
      startedAt: startedAt.toISOString(),
      completedAt: new Date(startedAt.getTime() + 80).toISOString(),
      durationMs: 80,
      swampVersion: "20260201.000000.0",
      denoVersion: "2.1.0",
      platform: "darwin",
    },
  };
}
