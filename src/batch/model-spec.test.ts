// Tests of model loading: layer folders, properties and defaults, errors with file, line, nearest key.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { isTributaryError } from "../errors.js";
import { loadModelSpecs, modelPropertiesSchema, parseModelProperties } from "./model-spec.js";

const LAYERS = ["t1", "t2", "mart"] as const;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A models folder holding `files` (path relative to it → text). */
function modelsDir(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "trb-models-"));
  dirs.push(root);
  const dir = join(root, "models");
  mkdirSync(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** Joins lines into file text (line numbers in tests are the indexes + 1). */
const lines = (...l: string[]): string => l.join("\n") + "\n";

/** The TRB_BATCH_MODEL_INVALID message loading `dir` raises. */
function failure(dir: string): string {
  try {
    loadModelSpecs(dir, LAYERS);
  } catch (e) {
    assert.ok(isTributaryError(e, "TRB_BATCH_MODEL_INVALID"), `got ${String(e)}`);
    return e.message;
  }
  assert.fail("the models were accepted");
}

/** The message parsing properties `text` raises (file `/m/t1/x.yaml`). */
function propertiesFailure(text: string): string {
  try {
    parseModelProperties(text, "/m/t1/x.yaml");
  } catch (e) {
    assert.ok(isTributaryError(e, "TRB_BATCH_MODEL_INVALID"), `got ${String(e)}`);
    return e.message;
  }
  assert.fail("the properties were accepted");
}

describe("loadModelSpecs", () => {
  test("reads every layer's models, sorted by layer order then name, with defaults", () => {
    const dir = modelsDir({
      "mart/daily.sql": "SELECT 1 AS day",
      "t1/zeta.sql": "SELECT 2",
      "t1/alpha.sql": "\n-- leading lines stay\nSELECT 3 ;  \n\n",
      "t2/mid.sql": "SELECT 4",
    });
    const specs = loadModelSpecs(dir, LAYERS);
    assert.deepEqual(
      specs.map((s) => `${s.layer}.${s.name}`),
      ["t1.alpha", "t1.zeta", "t2.mid", "mart.daily"],
    );
    const alpha = specs[0]!;
    assert.equal(alpha.sql, "\n-- leading lines stay\nSELECT 3");
    assert.equal(alpha.sqlFile, join(dir, "t1", "alpha.sql"));
    assert.equal(alpha.propertiesFile, undefined);
    assert.equal(alpha.materialized, "partitioned");
    assert.equal(alpha.uniqueKey, undefined);
    assert.deepEqual(alpha.tests, []);
    assert.deepEqual(alpha.pii, []);
    assert.deepEqual(alpha.tags, []);
    assert.equal(alpha.description, undefined);
    assert.ok(Object.isFrozen(alpha));
  });

  test("a missing models folder or layer folder holds no models", () => {
    assert.deepEqual(loadModelSpecs(join(tmpdir(), "trb-no-such-models-dir"), LAYERS), []);
    const dir = modelsDir({ "t2/only.sql": "SELECT 1" });
    assert.deepEqual(
      loadModelSpecs(dir, LAYERS).map((s) => s.name),
      ["only"],
    );
  });

  test("properties become the spec: unique key, column tests, row count, pii, tags", () => {
    const dir = modelsDir({
      "t1/flights.sql": "SELECT 1",
      "t1/flights.yaml": lines(
        "description: One row per flight.",
        "owner: data-team",
        "materialized: full",
        "unique_key: flight_id",
        "pii: [passenger]",
        "tags: [core]",
        "tests:",
        "  columns:",
        "    origin:",
        "      - not_null",
        "      - relationships: { to: seed.airports, field: iata }",
        "    status:",
        "      - accepted_values: { values: [on_time, 1, true] }",
        "    flight_id: [unique]",
        "  row_count: { min: 1 }",
      ),
    });
    const [spec] = loadModelSpecs(dir, LAYERS);
    assert.ok(spec);
    assert.equal(spec.propertiesFile, join(dir, "t1", "flights.yaml"));
    assert.equal(spec.description, "One row per flight.");
    assert.equal(spec.owner, "data-team");
    assert.equal(spec.materialized, "full");
    assert.deepEqual(spec.uniqueKey, ["flight_id"]);
    assert.deepEqual(spec.pii, ["passenger"]);
    assert.deepEqual(spec.tags, ["core"]);
    // `unique_key: flight_id` and `flight_id: [unique]` are the same test, kept once.
    assert.deepEqual(spec.tests, [
      { kind: "unique", columns: ["flight_id"] },
      { kind: "not_null", column: "origin" },
      { kind: "relationships", column: "origin", to: "seed.airports", field: "iata" },
      { kind: "accepted_values", column: "status", values: ["on_time", 1, true] },
      { kind: "row_count", min: 1 },
    ]);
  });

  test("a composite unique key is one unique test", () => {
    const dir = modelsDir({
      "t1/a.sql": "SELECT 1",
      "t1/a.yaml": "unique_key: [day, origin]\n",
    });
    const [spec] = loadModelSpecs(dir, LAYERS);
    assert.deepEqual(spec?.uniqueKey, ["day", "origin"]);
    assert.deepEqual(spec?.tests, [{ kind: "unique", columns: ["day", "origin"] }]);
  });

  test("a .sql outside a configured layer folder is an error naming the file", () => {
    const dir = modelsDir({ "t3/x.sql": "SELECT 1", "t1/ok.sql": "SELECT 1" });
    const message = failure(dir);
    assert.ok(message.startsWith(join(dir, "t3", "x.sql")), message);
    assert.match(message, /not in a layer folder.*did you mean t1\//);
    assert.match(failure(modelsDir({ "top.sql": "SELECT 1" })), /top\.sql: not in a layer folder/);
    assert.match(
      failure(modelsDir({ "t1/deeper/x.sql": "SELECT 1" })),
      /deeper\/x\.sql: models sit directly in the layer folder/,
    );
  });

  test("a .yaml without its .sql is an error naming the file", () => {
    const dir = modelsDir({ "t1/flights.sql": "SELECT 1", "t1/flight.yaml": "owner: x\n" });
    const message = failure(dir);
    assert.ok(message.startsWith(join(dir, "t1", "flight.yaml") + ": "), message);
    assert.match(message, /no flight\.sql beside it \(did you mean flights\.yaml\?\)/);
  });

  test("names, empty files and .yml are errors naming the file", () => {
    assert.match(
      failure(modelsDir({ "t1/Flights.sql": "SELECT 1" })),
      /Flights\.sql: model names are lower_snake_case/,
    );
    assert.match(
      failure(modelsDir({ "t1/empty.sql": " ;\n\n" })),
      /empty\.sql: the model is empty/,
    );
    assert.match(
      failure(modelsDir({ "t1/a.sql": "SELECT 1", "t1/a.yml": "owner: x" })),
      /a\.yml: properties files end in \.yaml/,
    );
  });

  test("a properties error names the properties file and line", () => {
    const dir = modelsDir({
      "t1/a.sql": "SELECT 1",
      "t1/a.yaml": lines("owner: x", "tests:", "  row_count: { min: 5, max: 2 }"),
    });
    const message = failure(dir);
    assert.ok(message.startsWith(`${join(dir, "t1", "a.yaml")}:3: `), message);
    assert.match(message, /tests\.row_count: `min` is above `max`/);
  });
});

describe("parseModelProperties", () => {
  test("an empty file gets every default", () => {
    assert.deepEqual(parseModelProperties("", "/m/t1/x.yaml"), {
      materialized: "partitioned",
      pii: [],
      tags: [],
      tests: {},
    });
    assert.deepEqual(parseModelProperties("", "/m/t1/x.yaml"), modelPropertiesSchema.parse({}));
  });

  test("a YAML syntax error names the file and line", () => {
    const message = propertiesFailure(lines("owner: x", "tags: [a, b", "description: y"));
    assert.match(message, /^\/m\/t1\/x\.yaml:[23]: YAML syntax/);
  });

  test("a duplicate key is an error at its line", () => {
    assert.match(propertiesFailure(lines("owner: x", "owner: y")), /^\/m\/t1\/x\.yaml:2: /);
  });

  test("an unknown key names its line and the nearest valid key", () => {
    const message = propertiesFailure(lines("description: d", "owner: x", "materialised: full"));
    assert.match(message, /^\/m\/t1\/x\.yaml:3: /);
    assert.match(message, /unknown key `materialised` \(did you mean `materialized`\?\)/);
    assert.match(message, /valid keys: description, owner, materialized/);
  });

  test("unknown keys are found inside tests, with that level's keys", () => {
    const nested = propertiesFailure(
      lines(
        "tests:", // 1
        "  columns:", // 2
        "    status:", // 3
        "      - accepted_values:", // 4
        "          valuez: [a]", // 5
      ),
    );
    assert.match(nested, /^\/m\/t1\/x\.yaml:5: /);
    assert.match(nested, /unknown key `valuez` \(did you mean `values`\?\); valid keys: values/);
    const rowCount = propertiesFailure(lines("tests:", "  row_count:", "    mni: 1"));
    assert.match(
      rowCount,
      /^\/m\/t1\/x\.yaml:3: .*unknown key `mni` \(did you mean `min`\?\); valid keys: min, max/,
    );
  });

  test("an unknown test names the nearest test", () => {
    const word = propertiesFailure(lines("tests:", "  columns:", "    a: [not_nul]"));
    assert.match(word, /^\/m\/t1\/x\.yaml:3: /);
    assert.match(word, /unknown test `not_nul` \(did you mean `not_null`\?\)/);
    const map = propertiesFailure(
      lines("tests:", "  columns:", "    a:", "      - accepted_value: { values: [1] }"),
    );
    assert.match(
      map,
      /^\/m\/t1\/x\.yaml:4: .*unknown test `accepted_value` \(did you mean `accepted_values`\?\)/,
    );
  });

  test("a bad value names the nearest valid one", () => {
    const message = propertiesFailure(lines("owner: x", "materialized: partioned"));
    assert.match(message, /^\/m\/t1\/x\.yaml:2: materialized: .*\(did you mean `partitioned`\?\)/);
    assert.match(
      propertiesFailure(
        lines(
          "tests:",
          "  columns:",
          "    a:",
          "      - relationships: { to: airports, field: iata }",
        ),
      ),
      /^\/m\/t1\/x\.yaml:4: .*a qualified table/,
    );
  });

  test("properties are a map", () => {
    assert.match(
      propertiesFailure("- a\n- b\n"),
      /^\/m\/t1\/x\.yaml:1: model properties are a map/,
    );
  });
});
