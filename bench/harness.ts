// Shared helpers of the benchmark cases: machine description, result files, tables, child processes.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root (bench/ is one level below it). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Where each case writes `<case>.json`. */
export const RESULTS_DIR = join(ROOT, "bench", "results");

/** The machine a run happened on, as BENCHMARKS.md states it. */
export interface MachineInfo {
  /** Output of `nproc`. */
  readonly nproc: number;
  readonly cpuModel: string;
  /** Output of `free -h`, as printed. */
  readonly free: string;
  readonly totalMemBytes: number;
  readonly node: string;
  readonly platform: string;
  /** 1-, 5- and 15-minute load averages when the case started: other work on the machine shows here. */
  readonly loadAvg: readonly number[];
  readonly date: string;
}

/** Describes this machine now. */
export function machineInfo(): MachineInfo {
  const nproc = Number(run("nproc") || availableParallelism());
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  return {
    nproc,
    cpuModel,
    free: run("free", ["-h"]),
    totalMemBytes: totalmem(),
    node: process.version,
    platform: `${process.platform} ${run("uname", ["-r"])}`.trim(),
    loadAvg: loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
  };
}

function run(cmd: string, args: string[] = []): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  // Only the end is trimmed: `free -h` aligns its header with leading spaces.
  return r.status === 0 ? r.stdout.trimEnd() : "";
}

/** One compared figure: Tributary's value beside the baseline's, with the goal it is held to. */
export interface Metric {
  readonly name: string;
  readonly unit: string;
  readonly tributary: number | null;
  readonly baseline: number | null;
  /** tributary / baseline, when both are known. */
  readonly ratio: number | null;
  /** The goal in words, e.g. `>= 0.5x baseline` or `<= 25 ms`. */
  readonly goal: string | null;
  /** Whether the goal is met; null when there is no goal or no value. */
  readonly pass: boolean | null;
}

/** What a case records in `bench/results/<case>.json`. */
export interface CaseResult {
  readonly case: string;
  /** The path measured, in one sentence. */
  readonly measures: string;
  /** The baseline it is compared with, in one sentence. */
  readonly baseline: string;
  readonly machine: MachineInfo;
  /** Load averages when the case finished (a busy machine makes every figure noisy). */
  readonly loadAvgAfter: readonly number[];
  readonly seconds: number;
  readonly metrics: readonly Metric[];
  /** Raw figures of every run, for whoever re-reads the numbers. */
  readonly details: Record<string, unknown>;
  readonly notes: readonly string[];
}

/** A benchmark case: a name (the path it measures) and how to run it. */
export interface BenchCase {
  readonly name: string;
  run(): Promise<Omit<CaseResult, "machine" | "loadAvgAfter" | "seconds" | "case">>;
}

/** tributary ÷ baseline, when both are known and the baseline is positive. */
function ratioOf(tributary: number | null, baseline: number | null): number | null {
  return tributary !== null && baseline !== null && baseline > 0 ? tributary / baseline : null;
}

/** A metric compared by ratio: `goalRatio` is the least acceptable tributary/baseline. */
export function ratioMetric(
  name: string,
  unit: string,
  tributary: number | null,
  baseline: number | null,
  goalRatio?: number,
): Metric {
  const ratio = ratioOf(tributary, baseline);
  return {
    name,
    unit,
    tributary,
    baseline,
    ratio,
    goal: goalRatio === undefined ? null : `>= ${goalRatio}x baseline`,
    pass: goalRatio === undefined || ratio === null ? null : ratio >= goalRatio,
  };
}

/** A metric held to an absolute bound (`max`: the value must not exceed it). */
export function boundMetric(
  name: string,
  unit: string,
  tributary: number | null,
  max: number | undefined,
  baseline: number | null = null,
): Metric {
  const ratio = ratioOf(tributary, baseline);
  return {
    name,
    unit,
    tributary,
    baseline,
    ratio,
    goal: max === undefined ? null : `<= ${max} ${unit}`,
    pass: max === undefined || tributary === null ? null : tributary <= max,
  };
}

/** A metric with a goal that is neither a ratio nor an upper bound, judged by the case. */
export function checkMetric(
  name: string,
  unit: string,
  tributary: number | null,
  goal: string,
  pass: boolean | null,
): Metric {
  return { name, unit, tributary, baseline: null, ratio: null, goal, pass };
}

/** Writes a case's result file and returns its path. */
export function writeResult(result: CaseResult): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${result.case}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  return file;
}

/** Every result file present, by case name. */
export function readResults(): CaseResult[] {
  if (!existsSync(RESULTS_DIR)) return [];
  return readdirSync(RESULTS_DIR)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), "utf8")) as CaseResult);
}

/** A number for a table: thousands separated, at most `digits` decimals. */
export function fmt(v: number | null, digits = 1): string {
  if (v === null || !Number.isFinite(v)) return "-";
  const abs = Math.abs(v);
  const d = abs >= 1000 ? 0 : abs >= 100 ? Math.min(digits, 1) : digits;
  return v.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: 0 });
}

/** Rows of the summary table: case, metric, tributary, baseline, ratio, goal, verdict. */
export function tableRows(results: readonly CaseResult[]): string[][] {
  const rows: string[][] = [];
  for (const r of results) {
    for (const m of r.metrics) {
      rows.push([
        r.case,
        `${m.name} (${m.unit})`,
        fmt(m.tributary),
        fmt(m.baseline),
        m.ratio === null ? "-" : `${m.ratio.toFixed(2)}x`,
        m.goal ?? "-",
        m.pass === null ? "-" : m.pass ? "met" : "MISSED",
      ]);
    }
  }
  return rows;
}

export const TABLE_HEADER = ["case", "metric", "tributary", "baseline", "ratio", "goal", "verdict"];

/** A fixed-width text table for the terminal. */
export function textTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** A Markdown table. */
export function markdownTable(header: readonly string[], rows: readonly string[][]): string {
  const esc = (c: string): string => c.replaceAll("|", "\\|");
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i >= 2 && i <= 4 ? " ---: " : " --- ")).join("|")}|`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

/** A child process started by a case, with the first JSON line it printed. */
export interface Child<T> {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly hello: T;
  /** Sends SIGTERM and waits for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/** Options of `spawnChild`. */
export interface SpawnOptions {
  /** CPUs to pin the process to with `taskset` (e.g. "1"); ignored when taskset is missing. */
  readonly cpus?: string;
  /** Extra flags for node itself (e.g. `--cpu-prof`). */
  readonly nodeFlags?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

const HAVE_TASKSET = spawnSync("taskset", ["-c", "0", "true"]).status === 0;

/** Whether processes can be pinned to CPUs here. */
export function canPin(): boolean {
  return HAVE_TASKSET;
}

/** Where `buildForBench` compiles src/ and bench/ (inside node_modules so packages resolve). */
const BUILD_DIR = join(ROOT, "node_modules", ".cache", "tributary-bench");
let built = false;

/**
 * Compiles src/ and bench/ to plain JavaScript (tsc, once per run), so child processes run what
 * ships, without tsx's loader thread and transform cost in their CPU and RSS. BENCH_TSX=1 skips
 * this and runs children from source with `--import tsx`. Type errors elsewhere in the tree do not
 * stop the emit; they are printed.
 */
export function buildForBench(): void {
  if (built || process.env.BENCH_TSX === "1") return;
  mkdirSync(BUILD_DIR, { recursive: true });
  const config = {
    extends: join(ROOT, "tsconfig.json"),
    compilerOptions: {
      rootDir: ROOT,
      outDir: BUILD_DIR,
      noEmit: false,
      declaration: false,
      sourceMap: false,
    },
    include: [join(ROOT, "src"), join(ROOT, "bench")],
    exclude: [join(ROOT, "src", "**", "*.test.ts")],
  };
  writeFileSync(join(BUILD_DIR, "tsconfig.json"), JSON.stringify(config, null, 2));
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(BUILD_DIR, "tsconfig.json")], {
    encoding: "utf8",
  });
  if (r.status !== 0) {
    process.stderr.write(
      `  tsc reported errors (the emitted JavaScript is used anyway):\n${r.stdout.split("\n").slice(0, 5).join("\n")}\n`,
    );
  }
  built = true;
}

/** The command line that runs a bench TypeScript entry: compiled JavaScript, or the source under tsx. */
function nodeArgs(entry: string, arg: unknown, flags: readonly string[] = []): string[] {
  if (process.env.BENCH_TSX === "1" || !built)
    return [...flags, "--import", "tsx", entry, JSON.stringify(arg)];
  const js = join(BUILD_DIR, relative(ROOT, entry)).replace(/\.ts$/, ".js");
  return [...flags, js, JSON.stringify(arg)];
}

function start(entry: string, arg: unknown, options: SpawnOptions): ChildProcess {
  const args = nodeArgs(entry, arg, options.nodeFlags);
  const pin = options.cpus !== undefined && HAVE_TASKSET;
  // taskset execs node, so the child's pid is the Node process's pid.
  const [cmd, argv] = pin
    ? ["taskset", ["-c", options.cpus!, process.execPath, ...args]]
    : [process.execPath, args];
  return spawn(cmd as string, argv as string[], {
    cwd: ROOT,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "inherit"],
  });
}

/**
 * Runs a bench entry point (see `buildForBench`) in a new Node process and waits for the first line
 * it prints on stdout, which must be JSON. Its stderr passes through.
 */
export async function spawnChild<T>(
  entry: string,
  arg: unknown,
  options: SpawnOptions = {},
): Promise<Child<T>> {
  const proc = start(entry, arg, options);
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const lines = createInterface({ input: proc.stdout! });
  const hello = await new Promise<T>((resolve, reject) => {
    const onExit = (code: number | null): void =>
      reject(new Error(`${entry} exited (${code}) before it was ready`));
    proc.once("exit", onExit);
    lines.once("line", (line) => {
      proc.off("exit", onExit);
      try {
        resolve(JSON.parse(line) as T);
      } catch (e) {
        reject(new Error(`${entry} printed ${line.slice(0, 200)}`, { cause: e }));
      }
    });
  });
  return {
    proc,
    pid: proc.pid!,
    hello,
    stop: async (graceMs = 15_000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a bench entry point to completion and returns the JSON of the last line it printed. */
export async function runChild<T>(
  entry: string,
  arg: unknown,
  options: SpawnOptions = {},
): Promise<T> {
  const proc = start(entry, arg, options);
  let out = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => proc.once("exit", (c) => resolve(c)));
  const last = out.trim().split("\n").pop() ?? "";
  if (code !== 0) throw new Error(`${entry} failed (exit ${code}): ${last.slice(0, 500)}`);
  return JSON.parse(last) as T;
}

/** Resident memory of a process from /proc: now (VmRSS) and its peak so far (VmHWM), in bytes. */
export function rssOf(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb("VmRSS"), peak: kb("VmHWM") };
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = Number(run("getconf", ["CLK_TCK"])) || 100;

/** CPU seconds (user + system) a process has used: all its threads, and its main thread alone. */
export function cpuOf(pid: number): { total: number; main: number } | undefined {
  const ticks = (path: string): number => {
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    const text = readFileSync(path, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  };
  try {
    return {
      total: ticks(`/proc/${pid}/stat`) / CLOCK_TICKS,
      main: ticks(`/proc/${pid}/task/${pid}/stat`) / CLOCK_TICKS,
    };
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the largest sample. */
export function sampleRss(
  pid: number,
  everyMs = 100,
): { stop(): { maxRss: number; peak: number; samples: number[] } } {
  const samples: number[] = [];
  const timer = setInterval(() => {
    const r = rssOf(pid);
    if (r) samples.push(r.rss);
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      const r = rssOf(pid);
      if (r) samples.push(r.rss);
      return { maxRss: Math.max(0, ...samples), peak: r?.peak ?? 0, samples };
    },
  };
}

/** MiB of a byte count. */
export function mib(bytes: number): number {
  return bytes / 1024 / 1024;
}

/** Seconds a benchmark phase runs, from BENCH_SECONDS (default `fallback`). */
export function benchSeconds(fallback: number): number {
  const v = Number(process.env.BENCH_SECONDS);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
