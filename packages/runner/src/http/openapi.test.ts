import { describe, expect, it } from "vitest";
import * as shared from "@flowmeter/shared";
import { HEALTH_SCHEMA, OPENAPI_DOCUMENT } from "./openapi.js";

describe("the OpenAPI document", () => {
  it("serves the shared contract's own schema objects as its component schemas", () => {
    const schemas = OPENAPI_DOCUMENT.components.schemas;
    expect(schemas).toStrictEqual({
      RunPolicy: shared.RUN_POLICY_SCHEMA,
      RunEvent: shared.RUN_EVENT_VIEW_SCHEMA,
      HostSample: shared.HOST_SAMPLE_SCHEMA,
      StepHeartbeat: shared.STEP_HEARTBEAT_SCHEMA,
      StageLogLine: shared.STAGE_LOG_LINE_SCHEMA,
      Error: shared.API_ERROR_SCHEMA,
      RunState: shared.RUN_STATE_SCHEMA,
      Run: shared.RUN_VIEW_SCHEMA,
      RunList: shared.RUN_LIST_SCHEMA,
      Stage: shared.STAGE_DEFINITION_SCHEMA,
      Workflow: shared.WORKFLOW_SCHEMA,
      CreateRunRequest: shared.CREATE_RUN_REQUEST_SCHEMA,
      CreateRunResponse: shared.CREATE_RUN_RESPONSE_SCHEMA,
      CancelRunRequest: shared.CANCEL_RUN_REQUEST_SCHEMA,
      EventType: shared.EVENT_TYPE_SCHEMA,
      RunEventsPage: shared.RUN_EVENTS_PAGE_SCHEMA,
      StageView: shared.STAGE_VIEW_SCHEMA,
      RunStages: shared.RUN_STAGES_SCHEMA,
      RunTelemetry: shared.RUN_TELEMETRY_SCHEMA,
      RunLogs: shared.RUN_LOGS_SCHEMA,
      Health: HEALTH_SCHEMA,
    });
    // Not copies: the very objects @flowmeter/shared exports (and validates run-events jobs with).
    const exported = new Set<unknown>(Object.values(shared));
    for (const [name, schema] of Object.entries(schemas)) {
      if (name !== "Health") expect(exported.has(schema), `${name} is a shared schema object`).toBe(true);
    }
  });

  it("has no reference that points nowhere", () => {
    const text = JSON.stringify(OPENAPI_DOCUMENT);
    const references = [...text.matchAll(/"\$ref":"#\/components\/(\w+)\/(\w+)"/g)];
    expect(references.length).toBeGreaterThan(0);
    for (const [, section, name] of references) {
      expect(Object.keys((OPENAPI_DOCUMENT.components as Record<string, object>)[section ?? ""] ?? {}), `${section}/${name}`).toContain(name);
    }
  });
});
