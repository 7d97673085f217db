// Summarizes a V8 .cpuprofile (from BENCH_PROFILE=1 or node --cpu-prof): where the samples fall, by package or file, by function, and inclusive.
//
// Usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [rows]
import { readFileSync } from "node:fs";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where a frame lives: the npm package, else the file relative to the repository. */
function placeOf(url: string, name: string): string {
  if (!url) return name || "(native)";
  const pkg = /node_modules\/(?!\.cache\/)((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  return url
    .replace(/^file:\/\//, "")
    .replace(/.*\/(src|bench|node_modules\/\.cache\/tributary-bench)\//, "$1/")
    .replace(/^node_modules\/\.cache\/tributary-bench\//, "");
}

function summarize(profile: CpuProfile, rows: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const fn = (n: ProfileNode): string =>
    n.callFrame.url
      ? `${n.callFrame.functionName || "(anonymous)"} ${placeOf(n.callFrame.url, "")}:${n.callFrame.lineNumber + 1}`
      : n.callFrame.functionName || "(native)";
  const byPlace = new Map<string, number>();
  const byFn = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number): void =>
    void m.set(k, (m.get(k) ?? 0) + v);
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    add(byPlace, placeOf(n.callFrame.url, n.callFrame.functionName), t);
    add(byFn, fn(n), t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = fn(byId.get(cur)!);
      if (!seen.has(k)) {
        seen.add(k);
        add(inclusive, k, t);
      }
    }
  }
  const top = (m: Map<string, number>): string =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, rows)
      .map(([k, t]) => `${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join("\n");
  return [
    `${(total / 1e6).toFixed(1)} s sampled`,
    "--- self time by package or file",
    top(byPlace),
    "--- self time by function",
    top(byFn),
    "--- inclusive time by function",
    top(inclusive),
  ].join("\n");
}

const [file, rows] = process.argv.slice(2);
if (!file) {
  console.error("usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [rows]");
  process.exit(2);
}
console.log(summarize(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, Number(rows ?? 30)));
