import { describe, expect, it } from "vitest";
import { validateCliInvocation } from "@flowmeter/shared";
import { benchInternals } from "./bench.js";

describe("bench request templates", () => {
  it("give every request valid entries with ids of their own, children pointing at their parent", () => {
    const parts = benchInternals.requestTemplate(100, new Date());
    const first = JSON.parse(benchInternals.fillTemplate(parts, "run", 1)) as { events: unknown[] };
    const second = JSON.parse(benchInternals.fillTemplate(parts, "run", 2)) as {
      events: { insert_id: string; properties: { id: string; parentInvocationId?: string } }[];
    };
    expect(first.events).toHaveLength(100);
    for (const event of first.events) expect(validateCliInvocation(event).ok).toBe(true);
    const ids = new Set(second.events.map((event) => event.insert_id));
    expect(ids.size).toBe(100);
    expect(second.events[0]?.insert_id).toBe("run-2-000");
    expect(second.events[1]?.properties.parentInvocationId).toBe("run-2-000");
    expect(second.events.every((event) => event.insert_id === event.properties.id)).toBe(true);
  });

  it("send a bare event when a request holds one entry", () => {
    const body = JSON.parse(benchInternals.fillTemplate(benchInternals.requestTemplate(1, new Date()), "run", 7)) as { event: string; insert_id: string };
    expect(body.event).toBe("cli_invocation");
    expect(body.insert_id).toBe("run-7-000");
  });
});
