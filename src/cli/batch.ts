// `tributary batch …`: plan, run, backfill, repair, runs and partitions of a project's batch layer.
import { existsSync } from "node:fs";
import { join } from "node:path";
import cliProgress from "cli-progress";
import { pino } from "pino";
import { openCatalog, openLake } from "../backends/registry.js";
import {
  BatchEngine,
  acquireBatchLock,
  checkPartitions,
  compileOffline,
  dayRange,
  formatPlan,
  parseDay,
  planJson,
  readCatalogView,
  runJson,
  summaryJson,
  taskJson,
  type RunProgress,
  type RunRequest,
  type RunSummary,
} from "../batch/index.js";
import { loadPipeline, type Pipeline } from "../config/index.js";
import { TributaryError } from "../errors.js";

/** `tributary batch plan`: compiles the models and prints the plan (reads no data). */
export async function runBatchPlan(project: string, opts: { json?: boolean }): Promise<void> {
  const plan = await compileOffline(loadPipeline(project));
  process.stdout.write(
    opts.json ? JSON.stringify(planJson(plan), null, 2) + "\n" : formatPlan(plan) + "\n",
  );
}

/** What `run`, `backfill` and `repair` do once the engine is open. */
type Work = (
  engine: BatchEngine,
  progress: (p: RunProgress) => void,
) => Promise<RunSummary | undefined>;

/** `tributary batch run`: builds one day (default: yesterday by the batch clock) of every model. */
export async function runBatchRun(
  project: string,
  opts: { date?: string; model?: string[]; json?: boolean },
): Promise<void> {
  await withEngine(project, "tributary batch run", opts.json === true, async (engine, progress) => {
    const day = opts.date !== undefined ? parseDay(opts.date) : await engine.yesterday();
    if (day === undefined)
      throw new TributaryError(
        "TRB_BATCH_BAD_DATE",
        "The batch clock's stream has no landed events yet; pass --date YYYY-MM-DD.",
      );
    const request: RunRequest = {
      trigger: "manual",
      days: [day],
      onlyStale: false,
      ...(opts.model ? { models: opts.model } : {}),
    };
    return engine.run(request, progress);
  });
}

/** `tributary batch backfill`: builds every partition of a day range that is not fresh (resumable). */
export async function runBatchBackfill(
  project: string,
  opts: { from: string; to: string; model?: string[]; force?: boolean; json?: boolean },
): Promise<void> {
  const days = dayRange(opts.from, opts.to);
  await withEngine(project, "tributary batch backfill", opts.json === true, (engine, progress) =>
    engine.run(
      {
        trigger: "backfill",
        days,
        onlyStale: opts.force !== true,
        ...(opts.model ? { models: opts.model } : {}),
      },
      progress,
    ),
  );
}

/** `tributary batch repair`: rebuilds every stale, failed or missing partition. */
export async function runBatchRepair(project: string, opts: { json?: boolean }): Promise<void> {
  await withEngine(project, "tributary batch repair", opts.json === true, (engine, progress) =>
    engine.repair(progress),
  );
}

/** `tributary batch runs`: the run history (reads the catalog; works beside a running server). */
export async function runBatchRuns(
  project: string,
  opts: { limit: number; json?: boolean },
): Promise<void> {
  const pipeline = loadPipeline(project);
  if (!hasCatalog(pipeline)) {
    process.stdout.write(opts.json ? "[]\n" : "No batch runs yet.\n");
    return;
  }
  const catalog = await openCatalog(pipeline, { readonly: true });
  try {
    const runs = await catalog.runs(opts.limit);
    if (opts.json) {
      const detailed = await Promise.all(
        runs.map(async (r) => ({
          ...runJson(r),
          tasks: (await catalog.tasks(r.id)).map(taskJson),
        })),
      );
      process.stdout.write(JSON.stringify(detailed, null, 2) + "\n");
      return;
    }
    if (runs.length === 0) {
      process.stdout.write("No batch runs yet.\n");
      return;
    }
    const rows = runs.map((r) => [
      String(r.id),
      r.trigger,
      r.status,
      r.startedAt.replace("T", " ").slice(0, 19),
      r.finishedAt
        ? `${((Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000).toFixed(1)} s`
        : "",
      describe(r.days),
      r.error ?? "",
    ]);
    process.stdout.write(
      table(["run", "trigger", "status", "started", "took", "days", "error"], rows),
    );
  } finally {
    await catalog.close();
  }
}

/** `tributary batch partitions`: fresh/stale/failed/missing per model and day (read-only). */
export async function runBatchPartitions(
  project: string,
  opts: { model?: string; status?: string; json?: boolean },
): Promise<void> {
  const pipeline = loadPipeline(project);
  const plan = await compileOffline(pipeline);
  if (!hasCatalog(pipeline)) {
    process.stdout.write(
      opts.json ? "[]\n" : "No partitions: nothing has landed or been built yet.\n",
    );
    return;
  }
  const catalog = await openCatalog(pipeline, { readonly: true });
  try {
    const checks = checkPartitions(plan, await readCatalogView(catalog, plan)).filter(
      (c) =>
        (opts.model === undefined || c.model === opts.model) &&
        (opts.status === undefined || c.status === opts.status),
    );
    if (opts.json) {
      process.stdout.write(JSON.stringify(checks, null, 2) + "\n");
      return;
    }
    // One line per model: counts by status, then the non-fresh days with their reason.
    const lines: string[] = [];
    for (const m of plan.models) {
      const mine = checks.filter((c) => c.model === m.id);
      if (mine.length === 0) continue;
      const counts = new Map<string, number>();
      for (const c of mine) counts.set(c.status, (counts.get(c.status) ?? 0) + 1);
      lines.push(`${m.id}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(", ")}`);
      for (const c of mine.filter((x) => x.status !== "fresh").slice(0, 10))
        lines.push(`  ${c.day} ${c.status}${c.reason ? ` — ${c.reason}` : ""}`);
      const more = mine.filter((x) => x.status !== "fresh").length - 10;
      if (more > 0) lines.push(`  … ${more} more`);
    }
    process.stdout.write((lines.length > 0 ? lines.join("\n") : "No partitions.") + "\n");
  } finally {
    await catalog.close();
  }
}

/**
 * Opens the project's batch engine in this process (taking the batch lock, so it refuses while
 * `tributary up` runs the project), runs `work` with a progress bar on a terminal, prints the
 * summary, and sets a non-zero exit code when a task failed.
 */
async function withEngine(project: string, what: string, json: boolean, work: Work): Promise<void> {
  const pipeline = loadPipeline(project);
  const release = acquireBatchLock(join(pipeline.dataDir, "batch.lock"), what);
  const catalog = await openCatalog(pipeline);
  const log = pino({ level: process.env.LOG_LEVEL ?? "warn" }, pino.destination(2));
  let engine: BatchEngine | undefined;
  const bar = new cliProgress.SingleBar(
    { format: "{bar} {value}/{total} tasks  {running}", hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  try {
    engine = await BatchEngine.create({
      pipeline,
      catalog,
      lake: await openLake(pipeline),
      log,
    });
    await engine.recoverInterruptedRuns();
    const summary = await work(engine, (p) => {
      if (json || !process.stderr.isTTY) return;
      if (!started && p.total > 0) {
        bar.start(p.total, 0, { running: "" });
        started = true;
      }
      bar.update(p.done, { running: p.running.join(" ") });
    });
    if (started) bar.stop();
    print(summary, json);
  } finally {
    if (started) bar.stop();
    await engine?.close();
    await catalog.close();
    release();
  }
}

function print(summary: RunSummary | undefined, json: boolean): void {
  if (!summary) {
    process.stdout.write(
      json
        ? JSON.stringify(summaryJson(undefined), null, 2) + "\n"
        : "Nothing to build: every partition is fresh.\n",
    );
    return;
  }
  const { run, tasks } = summary;
  if (run.status !== "succeeded") process.exitCode = 1;
  if (json) {
    process.stdout.write(JSON.stringify(summaryJson(summary), null, 2) + "\n");
    return;
  }
  const rows = tasks.map((t) => [
    t.model,
    describe(t.days),
    t.status,
    t.ms === null ? "" : `${(t.ms / 1000).toFixed(2)} s`,
    t.rowsIn === null ? "" : String(t.rowsIn),
    t.rowsOut === null ? "" : String(t.rowsOut),
    (t.error ?? "").split("\n")[0]!.slice(0, 120),
  ]);
  process.stdout.write(
    `Batch run ${run.id} (${run.trigger}): ${run.status}, ${tasks.length} tasks\n` +
      table(["model", "days", "status", "took", "rows in", "rows out", "error"], rows),
  );
}

/** Whether the project has a catalog yet (it is created by the first `tributary up` or batch run). */
/** Whether the project has a catalog to read (a server catalog always exists). */
export function hasCatalog(pipeline: Pipeline): boolean {
  return (
    pipeline.backends.catalog.kind !== "sqlite" || existsSync(join(pipeline.dataDir, "catalog.db"))
  );
}

function describe(days: readonly string[]): string {
  if (days.length === 0) return "-";
  if (days.length === 1) return days[0]!;
  return `${days[0]}..${days[days.length - 1]} (${days.length})`;
}

function table(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd() + "\n";
  return line(header) + line(widths.map((w) => "-".repeat(w))) + rows.map(line).join("");
}
