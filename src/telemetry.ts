// Prometheus metrics every stage reports (docs/reference/metrics.md): received, emitted, dead-lettered, errored.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The process's metrics registry, served at GET /metrics. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "tributary_process_" });

/** Metrics by stage, named `tributary_<stage>_<what>`. */
export const metrics = {
  collectReceived: new Counter({
    name: "tributary_collect_events_received_total",
    help: "Events received by collect endpoints, valid or not.",
    labelNames: ["stream", "endpoint"],
    registers: [registry],
  }),
  collectEmitted: new Counter({
    name: "tributary_collect_events_emitted_total",
    help: "Events durably appended to their stream (duplicates excluded).",
    labelNames: ["stream"],
    registers: [registry],
  }),
  collectDuplicates: new Counter({
    name: "tributary_collect_events_duplicate_total",
    help: "Events acknowledged again without storing (id seen within the dedup window).",
    labelNames: ["stream"],
    registers: [registry],
  }),
  collectDeadLettered: new Counter({
    name: "tributary_collect_events_dead_lettered_total",
    help: "Events stored in the dead-letter dataset instead of the stream (never dropped).",
    labelNames: ["stream"],
    registers: [registry],
  }),
  collectErrors: new Counter({
    name: "tributary_collect_requests_errored_total",
    help: "Requests answered with an error, by code.",
    labelNames: ["code"],
    registers: [registry],
  }),
  collectInflightBytes: new Gauge({
    name: "tributary_collect_inflight_bytes",
    help: "Bytes of accepted events waiting to become durable.",
    registers: [registry],
  }),
  collectAckSeconds: new Histogram({
    name: "tributary_collect_append_seconds",
    help: "Time from a request's events reaching the stream to their durable acknowledgement.",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  }),
  landReceived: new Counter({
    name: "tributary_land_events_received_total",
    help: "Events read from the stream by the land stage.",
    labelNames: ["dataset"],
    registers: [registry],
  }),
  landEmitted: new Counter({
    name: "tributary_land_events_emitted_total",
    help: "Events committed to the lake.",
    labelNames: ["dataset"],
    registers: [registry],
  }),
  landFiles: new Counter({
    name: "tributary_land_files_committed_total",
    help: "Parquet files committed to the lake.",
    labelNames: ["dataset"],
    registers: [registry],
  }),
  landErrors: new Counter({
    name: "tributary_land_errors_total",
    help: "Failed landing attempts (the events stay in the stream and are retried).",
    labelNames: ["dataset"],
    registers: [registry],
  }),
  landLag: new Gauge({
    name: "tributary_land_lag_events",
    help: "Events in the stream not yet committed to the lake.",
    labelNames: ["dataset"],
    registers: [registry],
  }),
  serveQueries: new Counter({
    name: "tributary_serve_queries_total",
    help: "SQL queries answered, by outcome (ok or an error code).",
    labelNames: ["outcome"],
    registers: [registry],
  }),
  serveQuerySeconds: new Histogram({
    name: "tributary_serve_query_seconds",
    help: "SQL query time.",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry],
  }),
  batchRuns: new Counter({
    name: "tributary_batch_runs_total",
    help: "Batch runs finished, by trigger and status (succeeded or failed).",
    labelNames: ["trigger", "status"],
    registers: [registry],
  }),
  speedReceived: new Counter({
    name: "tributary_speed_events_received_total",
    help: "Events the speed layer read from a view's stream.",
    labelNames: ["view"],
    registers: [registry],
  }),
  speedEmitted: new Counter({
    name: "tributary_speed_events_emitted_total",
    help: "Events folded into a view's windows (read minus filtered out and late).",
    labelNames: ["view"],
    registers: [registry],
  }),
  speedLate: new Counter({
    name: "tributary_speed_events_late_total",
    help: "Events behind the view's watermark: left to the batch layer, which counts them once it covers their day.",
    labelNames: ["view"],
    registers: [registry],
  }),
  speedErrors: new Counter({
    name: "tributary_speed_errors_total",
    help: "Failed speed layer steps (read, checkpoint); the step is retried with backoff.",
    labelNames: ["view"],
    registers: [registry],
  }),
  speedBuckets: new Gauge({
    name: "tributary_speed_buckets",
    help: "Window buckets a view's speed layer holds in memory.",
    labelNames: ["view"],
    registers: [registry],
  }),
  batchRowsReceived: new Counter({
    name: "tributary_batch_rows_received_total",
    help: "Rows batch tasks read from their inputs (the files of the days they built), by model.",
    labelNames: ["model"],
    registers: [registry],
  }),
  batchRows: new Counter({
    name: "tributary_batch_rows_emitted_total",
    help: "Rows committed by batch tasks, by model.",
    labelNames: ["model"],
    registers: [registry],
  }),
  batchTaskFailures: new Counter({
    name: "tributary_batch_task_errors_total",
    help: "Batch tasks that failed after their retries, by model.",
    labelNames: ["model"],
    registers: [registry],
  }),
  batchStalePartitions: new Gauge({
    name: "tributary_batch_partitions_not_fresh",
    help: "Partitions of batch models that are stale, failed or missing, by model.",
    labelNames: ["model"],
    registers: [registry],
  }),
};
