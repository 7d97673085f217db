// Writes the generated files (JSON Schema, config, model properties and error references); `--check` fails when one is stale.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ROOT, renderAll } from "./generated-files.js";

const check = process.argv.includes("--check");
const stale: string[] = [];
for (const [path, content] of await renderAll()) {
  const full = join(ROOT, path);
  let current: string | undefined;
  try {
    current = readFileSync(full, "utf8");
  } catch {
    current = undefined;
  }
  if (current === content) continue;
  if (check) {
    stale.push(path);
  } else {
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
    console.log(`wrote ${path}`);
  }
}
if (check) {
  if (stale.length > 0) {
    console.error(
      `stale generated files: ${stale.join(", ")}; run \`npm run generate\` and commit them`,
    );
    process.exitCode = 1;
  } else {
    console.log("generated files are up to date");
  }
}
