// Fails when a generated file (JSON Schema, config.md, errors.md) is stale: run `npm run generate`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT, renderAll } from "../../scripts/generated-files.js";

test("generated files match their sources", async () => {
  for (const [path, expected] of await renderAll()) {
    let current = "";
    try {
      current = readFileSync(join(ROOT, path), "utf8");
    } catch {
      assert.fail(`${path} is missing; run \`npm run generate\``);
    }
    assert.ok(current === expected, `${path} is stale; run \`npm run generate\``);
  }
});
