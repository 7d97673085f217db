// Case stream_to_lake: the land stage turning N events already in the embedded stream into
// committed Parquet, beside DuckDB's own NDJSON → Parquet COPY of the same records.
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { pino } from "pino";
import { openEmbeddedBackends } from "../../../src/backends/registry.js";
import { deadLetterStream, normalize } from "../../../src/collect/index.js";
import { loadPipeline } from "../../../src/config/index.js";
import { LandStage } from "../../../src/land/index.js";
import { rawDataset } from "../../../src/lake/index.js";
import type { StreamRecord } from "../../../src/backends/contracts/index.js";
import { STREAM, createBenchProject, flightEvent } from "../../flights.js";
import { ratioMetric, type BenchCase } from "../../harness.js";
import { countParquet, duckdbCopy } from "./baseline.js";

/** Events per run: BENCH_EVENTS, default one million. */
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
/** Event times spread evenly over this span (48 hours: ~21k events per hourly partition at 1M). */
const SPAN_MS = 48 * 3_600_000;
const BASE_TIME = Date.UTC(2001, 0, 15);
/** Events per append call, as a batched request appends them; APPENDS_PER_COMMIT calls go out at once (one group commit). */
const PER_APPEND = 100;
const APPENDS_PER_COMMIT = 100;
const CHUNK = PER_APPEND * APPENDS_PER_COMMIT;

function cpuSeconds(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6;
}

/** The stream_to_lake case. */
export const streamToLake: BenchCase = {
  name: "stream_to_lake",
  async run() {
    const project = createBenchProject();
    try {
      const pipeline = loadPipeline(project.dir);
      const plan = pipeline.streams.get(STREAM)!;
      const dataset = rawDataset(plan);
      const log = pino({ level: "warn" }, pino.destination(2));
      const backends = openEmbeddedBackends(pipeline.dataDir, pipeline.lakeDir);
      const settings = {
        dedupWindowMs: plan.dedupWindowMs,
        dedupMaxIds: plan.dedupMaxIds,
        retainMs: plan.retainMs,
      };
      await backends.stream.open({ name: STREAM, ...settings });
      await backends.stream.open({ name: deadLetterStream(STREAM), ...settings });

      // 1. Fill the stream with normalized records (as collect stores them); write the same
      //    records as NDJSON for the baseline.
      const ndjsonPath = join(project.dir, "baseline.ndjson");
      const ndjson = createWriteStream(ndjsonPath);
      const receivedAt = Date.now();
      let appendSeconds = 0;
      let bytes = 0;
      for (let from = 0; from < EVENTS; from += CHUNK) {
        const records: StreamRecord[] = [];
        for (let i = from; i < Math.min(EVENTS, from + CHUNK); i++) {
          const id = `FL${String(i).padStart(10, "0")}`;
          const n = normalize(
            plan,
            flightEvent(i, id, BASE_TIME + Math.floor((i * SPAN_MS) / EVENTS)),
            receivedAt,
          );
          if (!n.ok) throw new Error(`generated event ${i} is invalid: ${n.reason}`);
          records.push({ id: n.id, time: n.time, data: n.data });
          bytes += n.data.length + 1;
        }
        const started = performance.now();
        const appends: Promise<unknown>[] = [];
        for (let at = 0; at < records.length; at += PER_APPEND) {
          appends.push(backends.stream.append(STREAM, records.slice(at, at + PER_APPEND)));
        }
        await Promise.all(appends);
        appendSeconds += (performance.now() - started) / 1000;
        if (!ndjson.write(records.map((r) => r.data).join("\n") + "\n"))
          await once(ndjson, "drain");
      }
      ndjson.end();
      await once(ndjson, "finish");

      // 2. Land them all: start the land stage and wait for the flush to commit everything.
      const started = performance.now();
      const cpu0 = process.cpuUsage();
      const land = await LandStage.start(pipeline, backends, log);
      await land.flush();
      const landCpu = cpuSeconds(process.cpuUsage(cpu0));
      const landSeconds = (performance.now() - started) / 1000;
      await land.stop();
      const landed = await countParquet(join(pipeline.lakeDir, "raw", STREAM));
      await backends.stream.close();
      await backends.catalog.close();
      if (landed.rows !== EVENTS) throw new Error(`landed ${landed.rows} rows, expected ${EVENTS}`);

      // 3. The baseline: one DuckDB COPY of the same records, and the same with Tributary's partitioning.
      const cpu1 = process.cpuUsage();
      const plain = await duckdbCopy(
        ndjsonPath,
        dataset.columns,
        join(project.dir, "baseline.parquet"),
        false,
      );
      const plainCpu = cpuSeconds(process.cpuUsage(cpu1));
      const partitioned = await duckdbCopy(
        ndjsonPath,
        dataset.columns,
        join(project.dir, "baseline-partitioned"),
        true,
      );
      for (const r of [plain, partitioned]) {
        if (r.rows !== EVENTS) throw new Error(`baseline wrote ${r.rows} rows, expected ${EVENTS}`);
      }

      const landRate = EVENTS / landSeconds;
      process.stderr.write(
        `  stream_to_lake: land ${Math.round(landRate / 1000)}k ev/s, DuckDB COPY ${Math.round(EVENTS / plain.seconds / 1000)}k ev/s\n`,
      );
      return {
        measures: `LandStage landing ${EVENTS.toLocaleString("en-US")} flights-like events (${Math.round(bytes / EVENTS)} B normalized, event times over 48 h) from the embedded stream into committed, partitioned Parquet (zstd): from start to flush() resolved.`,
        baseline:
          "DuckDB (2 threads): COPY (SELECT * FROM read_json('<same records>.ndjson', format='newline_delimited', columns={<dataset columns>})) TO '<file>.parquet' (FORMAT parquet, COMPRESSION zstd).",
        metrics: [
          ratioMetric("landing throughput", "events/s", landRate, EVENTS / plain.seconds, 0.8),
          ratioMetric(
            "CPU per event, all threads (lower is better)",
            "µs",
            (landCpu * 1e6) / EVENTS,
            (plainCpu * 1e6) / EVENTS,
          ),
          ratioMetric(
            "vs DuckDB COPY with the same dt/hour partitioning",
            "events/s",
            landRate,
            EVENTS / partitioned.seconds,
          ),
          ratioMetric(
            `stream append (${PER_APPEND}-event appends, ${APPENDS_PER_COMMIT} per commit; no goal)`,
            "events/s",
            EVENTS / appendSeconds,
            null,
          ),
        ],
        details: {
          events: EVENTS,
          ndjsonBytes: bytes,
          flushMaxBytes: pipeline.lake.flushMaxBytes,
          land: {
            seconds: landSeconds,
            cpuSeconds: landCpu,
            files: landed.files,
            rows: landed.rows,
          },
          baselineCpuSeconds: plainCpu,
          appendSeconds,
          baseline: plain,
          baselinePartitioned: partitioned,
        },
        notes: [
          `The land stage wrote ${landed.files} files in batches of lake.flush.max_bytes (${Math.round(pipeline.lake.flushMaxBytes / 1024 / 1024)} MiB); the baseline writes one file in one statement.`,
        ],
      };
    } finally {
      project.cleanup();
    }
  },
};
