import { describe, expect, it } from "vitest";
import { decodeMetricsJson } from "./decode-json.js";
import { metricRows } from "./otel-rows.js";

const request = (metrics: unknown[]) =>
  Buffer.from(
    JSON.stringify({
      resourceMetrics: [
        { resource: { attributes: [{ key: "service.name", value: { stringValue: "api" } }] }, scopeMetrics: [{ scope: { name: "meter" }, metrics }] },
      ],
    }),
  );

describe("metricRows", () => {
  it("maps JSON data points (int64 as strings, NaN as text) and refuses what the tables cannot hold", () => {
    const body = request([
      {
        name: "requests",
        sum: {
          aggregationTemporality: 1,
          isMonotonic: true,
          dataPoints: [
            {
              timeUnixNano: "1765108800000000001",
              startTimeUnixNano: "1765108790000000000",
              asInt: "42",
              attributes: [{ key: "route", value: { stringValue: "/a" } }],
            },
            { timeUnixNano: "1765108800000000001", asDouble: "NaN" },
          ],
        },
      },
      { name: "queue.depth", gauge: { dataPoints: [{ timeUnixNano: "1765108800000000000", asDouble: 7.5 }] } },
      { name: "latency", summary: { dataPoints: [{}, {}] } },
    ]);
    const mapped = metricRows(decodeMetricsJson(body));
    expect(mapped.sums).toEqual([
      expect.objectContaining({
        ServiceName: "api",
        ScopeName: "meter",
        MetricName: "requests",
        Attributes: { route: "/a" },
        StartTimeUnix: "2025-12-07 11:59:50.000000000",
        TimeUnix: "2025-12-07 12:00:00.000000001",
        Value: 42,
        AggregationTemporality: 1,
        IsMonotonic: true,
      }),
    ]);
    expect(mapped.gauges.map((row) => [row.MetricName, row.Value])).toEqual([["queue.depth", 7.5]]);
    expect(mapped.rejected).toBe(3);
    expect(mapped.firstProblem).toBe("a data point's value, sum, minimum, maximum or bound is not a finite number");
    expect(mapped.rows).toHaveLength(2);
  });

  it("gives the same data point the same RecordId and another point another", () => {
    const point = (value: number) => request([{ name: "g", gauge: { dataPoints: [{ timeUnixNano: "1765108800000000000", asDouble: value }] } }]);
    const [first] = metricRows(decodeMetricsJson(point(1))).gauges;
    expect(metricRows(decodeMetricsJson(point(1))).gauges[0]?.RecordId).toBe(first?.RecordId);
    expect(metricRows(decodeMetricsJson(point(2))).gauges[0]?.RecordId).not.toBe(first?.RecordId);
  });
});
