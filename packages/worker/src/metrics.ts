/** Every worker metric, in one place. Labels are closed sets; ids never become labels. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { RAW_TABLES, cliInvocationsTable } from "./clickhouse/raw-tables.js";

/** A counter by table with every table's series from the start: increase() ignores a series' first sample. */
function tableCounter(registry: Registry, name: string, help: string): Counter<"table"> {
  const counter = new Counter({ name, help, labelNames: ["table"], registers: [registry] });
  for (const { label } of RAW_TABLES) counter.inc({ table: label }, 0);
  return counter;
}

export function createWorkerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "flowmeter_" });
  return {
    registry,
    /** table: a raw table's label, its name without `flowmeter.` (the registry, clickhouse/raw-tables.ts: RAW_TABLES). */
    rowsInserted: tableCounter(registry, "flowmeter_worker_rows_inserted_total", "Rows written to ClickHouse"),
    blocksReplayed: tableCounter(
      registry,
      "flowmeter_worker_blocks_replayed_total",
      "Blocks re-inserted because an earlier insert of them was cut short (a worker killed, an ambiguous error)",
    ),
    /** table as above. */
    insertBatchRows: new Histogram({
      name: "flowmeter_worker_insert_batch_rows",
      help: "Rows per ClickHouse insert",
      labelNames: ["table"],
      buckets: [1, 10, 100, 500, 1000, 5000, 10_000, 25_000, 50_000, 100_000],
      registers: [registry],
    }),
    /** table as above. */
    insertDuration: new Histogram({
      name: "flowmeter_worker_insert_duration_seconds",
      help: "Time of one ClickHouse insert, dedup lookup included",
      labelNames: ["table"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    /** table as above. */
    insertFailures: tableCounter(registry, "flowmeter_worker_insert_failures_total", "ClickHouse inserts that failed (the jobs retry)"),
    /** table as above (cli_invocations today): rows ClickHouse refused every time, written to ingestion_warnings instead. */
    deadLetters: (() => {
      const counter = new Counter({
        name: "flowmeter_worker_dead_letters_total",
        help: "Rows ClickHouse refused on their own, kept in flowmeter.ingestion_warnings (reason dead_letter)",
        labelNames: ["table"],
        registers: [registry],
      });
      counter.inc({ table: cliInvocationsTable.label }, 0);
      return counter;
    })(),
    /** table: cli_invocations. The rest of a batch's ids were cleared by the partition's in-memory filter (consumers/seen-ids.ts). */
    idLookups: tableCounter(
      registry,
      "flowmeter_worker_id_lookups_total",
      "Ids looked up in cli_invocation_ids because the in-memory filter could not rule out that they were stored",
    ),
    /** 1 for each client-telemetry partition this worker holds the lease of and writes (at most FLOWMETER_PARTITIONS, 64, series). */
    partitionsHeld: new Gauge({
      name: "flowmeter_worker_partition_held",
      help: "Whether this worker holds the partition's lease and writes it (1) or not (0)",
      labelNames: ["partition"],
      registers: [registry],
    }),
    /** queue: client-telemetry (-N for partition N > 0) | run-events; reason: size | time | shutdown. */
    flushes: new Counter({ name: "flowmeter_worker_flushes_total", help: "Batch flushes by trigger", labelNames: ["queue", "reason"], registers: [registry] }),
    /** table as above; reason: in_batch (twice in one batch) | stored (already in ClickHouse). */
    duplicatesDropped: new Counter({
      name: "flowmeter_worker_duplicates_dropped_total",
      help: "Records not written because they were already written or being written",
      labelNames: ["table", "reason"],
      registers: [registry],
    }),
    /** queue: client-telemetry | run-events. Over waiting, active and delayed (retrying) jobs. */
    queueLag: new Gauge({
      name: "flowmeter_worker_queue_lag_seconds",
      help: "Age of the oldest record not yet written (waiting, active or waiting for a retry)",
      labelNames: ["queue"],
      registers: [registry],
    }),
    /** 1 when the worker's Redis connection is ready and answers, else 0; sampled at each scrape without waiting on Redis. */
    redisUp: new Gauge({ name: "flowmeter_worker_redis_up", help: "Whether the worker reaches Redis (1) or not (0)", registers: [registry] }),
    /** queue: client-telemetry | run-events | runs (the runners' queue, sampled here too); state: waiting | active | delayed | failed. */
    queueDepth: new Gauge({ name: "flowmeter_worker_queue_depth", help: "Jobs by state", labelNames: ["queue", "state"], registers: [registry] }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
