// Runs the benchmark cases (`npm run bench`, or `npm run bench -- http_to_stream`), writes
// bench/results/<case>.json, prints the table and refreshes the results block of BENCHMARKS.md
// (`npm run bench -- --report` only refreshes it from the result files).
//
// Environment: BENCH_SECONDS (seconds per load phase, default 10), BENCH_EVENTS (stream_to_lake
// events, default 1000000), BENCH_PIN=0 (no CPU pinning), BENCH_PROFILE=1 (--cpu-prof the Tributary
// server into BENCH_PROFILE_DIR), BENCH_BASELINE_STORE=file (fdatasync'd file instead of SQLite),
// BENCH_TSX=1 (run the child processes from source under tsx), BENCH_REPEAT (lake_to_mart runs of each
// side, default 3). See BENCHMARKS.md.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { format, resolveConfig } from "prettier";
import { consoleCase } from "./cases/console/index.js";
import { httpToNats } from "./cases/http_to_nats/index.js";
import { httpToStream } from "./cases/http_to_stream/index.js";
import { lakeToMart } from "./cases/lake_to_mart/index.js";
import { natsToLake } from "./cases/nats_to_lake/index.js";
import { streamToLake } from "./cases/stream_to_lake/index.js";
import { streamToSpeed } from "./cases/stream_to_speed/index.js";
import { viewQuery } from "./cases/view_query/index.js";
import {
  ROOT,
  TABLE_HEADER,
  machineInfo,
  markdownTable,
  readResults,
  tableRows,
  textTable,
  writeResult,
  type BenchCase,
  type CaseResult,
} from "./harness.js";

const CASES: readonly BenchCase[] = [
  httpToStream,
  streamToLake,
  lakeToMart,
  streamToSpeed,
  viewQuery,
  httpToNats,
  natsToLake,
  consoleCase,
];
const BENCHMARKS_MD = join(ROOT, "BENCHMARKS.md");
const START = "<!-- bench:results:start (written by `npm run bench`; edit outside this block) -->";
const END = "<!-- bench:results:end -->";

async function main(): Promise<void> {
  if (process.argv.includes("--report")) {
    // Re-print the table and refresh BENCHMARKS.md from the result files, running nothing.
    const results = readResults();
    console.log(textTable(TABLE_HEADER, tableRows(results)));
    await updateBenchmarksMd(results);
    return;
  }
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const unknown = wanted.filter((w) => !CASES.some((c) => c.name === w));
  if (unknown.length > 0) {
    console.error(
      `unknown case ${unknown.join(", ")}; cases: ${CASES.map((c) => c.name).join(", ")}`,
    );
    process.exit(2);
  }
  const selected = wanted.length === 0 ? CASES : CASES.filter((c) => wanted.includes(c.name));
  const done: CaseResult[] = [];
  let failed = false;
  for (const c of selected) {
    const machine = machineInfo();
    process.stderr.write(`${c.name}: running (load average ${machine.loadAvg.join(" ")})\n`);
    const started = performance.now();
    try {
      const out = await c.run();
      const result: CaseResult = {
        case: c.name,
        ...out,
        machine,
        loadAvgAfter: machineInfo().loadAvg,
        seconds: Math.round((performance.now() - started) / 100) / 10,
      };
      const file = writeResult(result);
      process.stderr.write(`${c.name}: done in ${result.seconds} s → ${file}\n`);
      done.push(result);
    } catch (e) {
      failed = true;
      process.stderr.write(`${c.name}: FAILED: ${(e as Error).stack ?? String(e)}\n`);
    }
  }
  console.log("\n" + textTable(TABLE_HEADER, tableRows(done)));
  for (const r of done) for (const n of r.notes) console.log(`note (${r.case}): ${n}`);
  await updateBenchmarksMd(readResults());
  process.exit(failed ? 1 : 0);
}

/** Rewrites the generated block of BENCHMARKS.md from every result file present (Prettier-formatted, as `npm run check` wants). */
async function updateBenchmarksMd(results: readonly CaseResult[]): Promise<void> {
  if (!existsSync(BENCHMARKS_MD) || results.length === 0) return;
  const text = readFileSync(BENCHMARKS_MD, "utf8");
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) return;
  const lines: string[] = [markdownTable(TABLE_HEADER, tableRows(results)), ""];
  for (const r of results) {
    const m = r.machine;
    lines.push(
      `**${r.case}** — ${r.measures} Baseline: ${r.baseline}`,
      "",
      `Run ${m.date} in ${r.seconds} s on ${m.nproc} × ${m.cpuModel}, ${(m.totalMemBytes / 1024 ** 3).toFixed(1)} GiB RAM, Node ${m.node}, ${m.platform}; load average ${m.loadAvg.join(" / ")} before, ${r.loadAvgAfter.join(" / ")} after.`,
      "",
      ...r.notes.map((n) => `- ${n}`),
      ...(r.notes.length > 0 ? [""] : []),
    );
  }
  const first = results[0]!.machine;
  lines.push("`free -h` at the first case:", "", "```", first.free, "```");
  const next = `${text.slice(0, a + START.length)}\n${lines.join("\n")}\n${text.slice(b)}`;
  const options = (await resolveConfig(BENCHMARKS_MD)) ?? {};
  writeFileSync(BENCHMARKS_MD, await format(next, { ...options, filepath: BENCHMARKS_MD }));
}

await main();
