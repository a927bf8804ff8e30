import { describe, expect, expectTypeOf, it } from "vitest";
import { validateCliInvocation, type CliInvocationEvent, type InvocationStatus, type WorkflowContext } from "./telemetry.js";

function entry(properties: Partial<CliInvocationEvent["properties"]> = {}): unknown {
  return {
    event: "cli_invocation",
    distinct_id: "user-1",
    insert_id: "id-1",
    properties: {
      id: "id-1",
      invocation: { command: "model", args: [], optionKeys: [], globalOptions: [] },
      result: { status: "success", exitCode: 0 },
      startedAt: "2026-11-20T10:00:00.000Z",
      completedAt: "2026-11-20T10:00:01.000Z",
      durationMs: 1000,
      ...properties,
    },
  };
}

const NOW = Date.parse("2026-11-23T00:00:00.000Z");

describe("validateCliInvocation", () => {
  it("accepts a parent, a child and a legacy entry, unknown fields included", () => {
    expect(validateCliInvocation(entry({ newField: { a: 1 } }), NOW).ok).toBe(true);
    const child = entry({ parentInvocationId: "p", workflowContext: { workflowName: "w", runId: "r", jobName: "j", stepName: "s", executor: "loopback" } });
    expect(validateCliInvocation(child, NOW).ok).toBe(true);
  });

  it("names the field of a wrong type or a missing field", () => {
    expect(validateCliInvocation(entry({ durationMs: "slow" as unknown as number }), NOW)).toEqual({
      ok: false,
      message: "properties.durationMs must be number",
    });
    expect(validateCliInvocation(entry({ result: { status: "meh", exitCode: 0 } as never }), NOW)).toEqual({
      ok: false,
      message: "properties.result.status must be one of success, error, user_error",
    });
  });

  it("refuses timestamps that are not real dates or are far from now", () => {
    expect(validateCliInvocation(entry({ startedAt: "2026-13-45T25:61:61.000Z" }), NOW)).toEqual({
      ok: false,
      message: "properties.startedAt is not a valid date",
    });
    expect(validateCliInvocation(entry({ completedAt: "2026-02-30T00:00:00.000Z" }), NOW)).toEqual({
      ok: false,
      message: "properties.completedAt is not a valid date",
    });
    expect(validateCliInvocation(entry({ startedAt: "2019-01-01T00:00:00.000Z" }), NOW)).toMatchObject({
      ok: false,
      message: expect.stringContaining("more than 5 years ago"),
    });
    expect(validateCliInvocation(entry({ startedAt: "2026-11-25T00:00:00.000Z" }), NOW)).toMatchObject({
      ok: false,
      message: expect.stringContaining("a day ahead"),
    });
    expect(validateCliInvocation(entry({ startedAt: "2026-11-20T10:00:00+02:00" }), NOW).ok).toBe(true);
  });
});

describe("types derived from CliInvocationEventSchema (checked by tsc)", () => {
  it("follow the schema: required fields, optional ones, enums, and the unknown fields a client may add", () => {
    expectTypeOf<InvocationStatus>().toEqualTypeOf<"success" | "error" | "user_error">();
    expectTypeOf<CliInvocationEvent["properties"]["durationMs"]>().toEqualTypeOf<number>();
    expectTypeOf<CliInvocationEvent["insert_id"]>().toEqualTypeOf<string | undefined>();
    expectTypeOf<WorkflowContext["runId"]>().toEqualTypeOf<string>();
    expectTypeOf<CliInvocationEvent["properties"]["invocation"]["unknownField"]>().toEqualTypeOf<unknown>();
  });
});
