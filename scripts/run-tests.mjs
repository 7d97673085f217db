// Runs one test suite with Node's test runner (Node 20 has no --test globs): unit, integration or e2e.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const suites = {
  // Unit tests sit beside the code; integration tests need the real servers.
  unit: {
    roots: ["src", "test/unit"],
    match: (f) => f.endsWith(".test.ts") && !f.endsWith(".integration.test.ts"),
  },
  integration: {
    roots: ["src", "test/integration"],
    match: (f) => f.endsWith(".integration.test.ts"),
  },
  e2e: { roots: ["test/e2e"], match: (f) => f.endsWith(".test.ts") },
};

const name = process.argv[2] ?? "unit";
const suite = suites[name];
if (!suite) {
  console.error(`unknown suite ${name}; use one of ${Object.keys(suites).join(", ")}`);
  process.exit(2);
}
const files = [];
const walk = (dir) => {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (suite.match(p)) files.push(p);
  }
};
suite.roots.forEach(walk);
files.sort();
if (files.length === 0) {
  console.log(`no ${name} tests found`);
  process.exit(name === "unit" ? 1 : 0);
}
const extra = process.argv.slice(3);
// A hung test fails after 10 minutes instead of holding CI to its limit, and a test file whose
// tests are done exits even if it leaked a handle (a leak is a bug, but not a reason to hang).
const guards = ["--test-timeout=600000", "--test-force-exit"];
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=1", ...guards, ...extra, ...files],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
