// Keeps docs/reference/errors.md and src/errors.ts in sync: exactly the same codes, same statuses (STYLE #10).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ERRORS } from "../../src/errors.js";

const doc = readFileSync(new URL("../../docs/reference/errors.md", import.meta.url), "utf8");

/** Each documented code: its `### TRB_…` heading and the `- Status:` line under it. */
function documented(): Map<string, number | undefined> {
  const out = new Map<string, number | undefined>();
  for (const section of doc.split(/^### /m).slice(1)) {
    const code = /^(TRB_[A-Z0-9_]+)\s*$/m.exec(section.split("\n")[0] ?? "")?.[1];
    if (code === undefined) continue;
    assert.ok(!out.has(code), `${code} is documented twice`);
    const status = /^- Status: (\d{3})/m.exec(section)?.[1];
    out.set(code, status === undefined ? undefined : Number(status));
  }
  return out;
}

test("errors.md documents exactly the codes in ERRORS", () => {
  const docCodes = [...documented().keys()].sort();
  const codes = Object.keys(ERRORS).sort();
  const missing = codes.filter((c) => !docCodes.includes(c));
  const extra = docCodes.filter((c) => !codes.includes(c));
  assert.deepEqual(
    { missing, extra },
    { missing: [], extra: [] },
    "run `npm run generate` (and add a WHAT_TO_DO line in scripts/generated-files.ts for a new code)",
  );
});

test("errors.md gives each code the status it has in ERRORS", () => {
  const docs = documented();
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.equal(
      docs.get(code),
      spec.status,
      `${code}: status in errors.md differs; run \`npm run generate\``,
    );
  }
});

test("codes follow TRB_<STAGE>_<WHAT>", () => {
  for (const code of Object.keys(ERRORS)) assert.match(code, /^TRB_[A-Z]+(_[A-Z0-9]+)*$/);
});
