// Tests of tributary.yaml loading: errors with file and line, did-you-mean, ${ENV}, cross-checks, the demo.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { TributaryError, isTributaryError } from "../errors.js";
import { loadPipeline, nearest, parseConfigText } from "./load.js";
import { sha256Hex } from "./pipeline.js";

const FILE = "/project/tributary.yaml";

/** The TRB_CONFIG_INVALID error `text` raises, with the line it names. */
function failure(text: string, env: NodeJS.ProcessEnv = {}): { message: string; line: number } {
  try {
    parseConfigText(text, FILE, env);
  } catch (e) {
    assert.ok(
      isTributaryError(e, "TRB_CONFIG_INVALID"),
      `expected TRB_CONFIG_INVALID, got ${String(e)}`,
    );
    const line = (e as TributaryError).details?.line;
    assert.equal(typeof line, "number");
    assert.ok(
      e.message.startsWith(`${FILE}:${String(line)}: `),
      `the message names file and line: ${e.message}`,
    );
    return { message: e.message, line: line as number };
  }
  assert.fail("the config was accepted");
}

/** Joins lines into YAML text (line numbers in tests are the indexes + 1). */
const yaml = (...lines: string[]): string => lines.join("\n") + "\n";

describe("parseConfigText", () => {
  test("a minimal config gets every default", () => {
    const c = parseConfigText(yaml("streams:", "  clicks: {}"), FILE, {});
    assert.equal(c.name, "tributary");
    assert.equal(c.data_dir, ".tributary");
    assert.equal(c.server.port, 8080);
    assert.equal(c.streams.clicks?.format, "json");
    assert.equal(c.streams.clicks?.dedup_window, "10m");
    assert.deepEqual(c.keys, []);
    assert.equal(c.lake.flush.max_age, "10s");
  });

  test("a YAML syntax error names the file and line", () => {
    const { message, line } = failure(yaml("streams:", "  clicks: {}", "  bad: [1, 2", "name: x"));
    assert.match(message, /YAML syntax/);
    assert.ok(line >= 3 && line <= 4, `line ${line}`);
  });

  test("a duplicate key is an error at its line", () => {
    const { line } = failure(yaml("streams:", "  clicks: {}", "  clicks: {}"));
    assert.equal(line, 3);
  });

  test("an unknown key names its own line and the nearest valid key", () => {
    const { message, line } = failure(
      yaml(
        "name: x", // 1
        "streams:", // 2
        "  flights:", // 3
        "    id_field: flight_id", // 4
        "    fields:", // 5
        "      flight_id: string", // 6
        "      date: timestamp", // 7
        "    time_feild: date", // 8
      ),
    );
    assert.equal(line, 8);
    assert.match(message, /unknown key `time_feild` \(did you mean `time_field`\?\)/);
    assert.match(message, /streams\.flights/);
  });

  test("unknown keys are found at every level, with the valid keys of that level", () => {
    const top = failure(
      yaml("streams: {}", "lake:", "  flush:", "    max_age: 5s", "  compresion: zstd"),
    );
    assert.equal(top.line, 5);
    assert.match(top.message, /did you mean `compression`/);
    assert.match(top.message, /valid keys: location, flush, compression/);
    const field = failure(
      yaml("streams:", "  f:", "    fields:", "      a: { type: string, requird: true }"),
    );
    assert.equal(field.line, 4);
    assert.match(field.message, /did you mean `required`/);
    const mapValued = failure(yaml("streams:", "  f:", "    feilds:", "      a: string"));
    assert.equal(mapValued.line, 3, "the line of the key, not of its first child");
    assert.match(mapValued.message, /did you mean `fields`/);
    const root = failure(yaml("streams: {}", "servr:", "  port: 1"));
    assert.equal(root.line, 2);
    assert.match(root.message, /did you mean `server`/);
  });

  test("a key far from every valid key gets no suggestion", () => {
    const { message } = failure(yaml("streams:", "  f:", "    completely_unrelated: 1"));
    assert.match(message, /unknown key `completely_unrelated`/);
    assert.doesNotMatch(message, /did you mean/);
  });

  test("invalid values and missing keys name the key path and line", () => {
    const dur = failure(yaml("streams:", "  f:", "    dedup_window: 10 minutes"));
    assert.equal(dur.line, 3);
    assert.match(dur.message, /streams\.f\.dedup_window: a duration/);
    const type = failure(yaml("streams:", "  f:", "    fields:", "      a: text"));
    assert.equal(type.line, 4);
    assert.match(type.message, /streams\.f\.fields\.a/);
    const missing = failure(yaml("name: x"));
    assert.match(missing.message, /streams: missing required key/);
    const port = failure(yaml("streams: {}", "server:", "  port: 70000"));
    assert.equal(port.line, 3);
  });

  test("${ENV} is replaced from the environment, also inside longer strings", () => {
    const c = parseConfigText(
      yaml(
        "streams: {}",
        "lake:",
        "  location: ${LAKE_ROOT}/lake",
        "keys:",
        "  - id: k",
        "    secret: ${WRITE_SECRET}",
        "    scopes: [admin]",
      ),
      FILE,
      { LAKE_ROOT: "/data", WRITE_SECRET: "s3cret-value" },
    );
    assert.equal(c.lake.location, "/data/lake");
    assert.equal(c.keys[0]?.secret, "s3cret-value");
  });

  test("a missing environment variable is an error naming it and its line", () => {
    const { message, line } = failure(
      yaml(
        "streams: {}",
        "keys:",
        "  - id: k",
        "    secret: ${WRITE_SECRET}",
        "    scopes: [admin]",
      ),
      { OTHER: "x" },
    );
    assert.equal(line, 4);
    assert.match(message, /environment variable WRITE_SECRET is not set/);
  });

  test("id_field and time_field must be declared fields", () => {
    const id = failure(
      yaml("streams:", "  f:", "    id_field: flightid", "    fields:", "      flight_id: string"),
    );
    assert.equal(id.line, 3);
    assert.match(
      id.message,
      /streams\.f\.id_field: `flightid` is not a declared field \(did you mean `flight_id`\?\)/,
    );
    const time = failure(
      yaml("streams:", "  f:", "    fields:", "      a: string", "    time_field: ts"),
    );
    assert.equal(time.line, 5);
    assert.match(time.message, /`ts` is not a declared field/);
  });

  test("the time field must be a timestamp", () => {
    const { message, line } = failure(
      yaml(
        "streams:",
        "  f:",
        "    time_field: date",
        "    fields:",
        "      date: { type: string }",
      ),
    );
    assert.equal(line, 3);
    assert.match(message, /time field must have type `timestamp`/);
    parseConfigText(
      yaml(
        "streams:",
        "  f:",
        "    time_field: date",
        "    fields:",
        "      date: { type: timestamp }",
      ),
      FILE,
      {},
    );
  });

  test("segment streams have fixed fields", () => {
    const { message } = failure(
      yaml("streams:", "  web:", "    format: segment", "    fields:", "      a: string"),
    );
    assert.match(message, /segment streams have fixed columns/);
  });

  test("a write scope must name a declared stream", () => {
    const { message, line } = failure(
      yaml(
        "streams:",
        "  flights: {}",
        "keys:",
        "  - id: k",
        "    secret: abcdefgh",
        "    scopes: [write:flihgts]",
      ),
    );
    assert.equal(line, 6);
    assert.match(message, /unknown stream `flihgts` \(did you mean `write:flights`\?\)/);
    const bad = failure(
      yaml("streams: {}", "keys:", "  - id: k", "    secret: abcdefgh", "    scopes: [wirte:x]"),
    );
    assert.match(bad.message, /keys\.0\.scopes\.0/);
  });

  test("keys: duplicate ids, a secret and hash that disagree, a Segment stream that is not Segment", () => {
    const dup = failure(
      yaml(
        "streams: {}",
        "keys:",
        "  - { id: k, secret: abcdefgh, scopes: [admin] }",
        "  - { id: k, secret: abcdefgi, scopes: [admin] }",
      ),
    );
    assert.match(dup.message, /duplicate key id `k`/);
    assert.equal(dup.line, 4);
    const hash = failure(
      yaml(
        "streams: {}",
        "keys:",
        `  - { id: k, secret: abcdefgh, secret_sha256: "${sha256Hex("other-secret")}", scopes: [admin] }`,
      ),
    );
    assert.match(hash.message, /does not match `secret`/);
    const seg = failure(
      yaml(
        "streams:",
        "  f: {}",
        "keys:",
        "  - { id: k, secret: abcdefgh, scopes: [write:f], segment_stream: f }",
      ),
    );
    assert.match(seg.message, /needs `format: segment`/);
    const none = failure(yaml("streams: {}", "keys:", "  - { id: k, scopes: [admin] }"));
    assert.match(none.message, /needs `secret` or `secret_sha256`/);
  });

  test("a replay needs a known stream and a key with its secret", () => {
    const replay = (key: string, stream = "flights"): string =>
      yaml(
        "streams:",
        "  flights: {}",
        "keys:",
        `  - { id: hashed, secret_sha256: "${"a".repeat(64)}", scopes: [write:flights] }`,
        "  - { id: plain, secret: abcdefgh, scopes: [write:flights] }",
        "replay:",
        `  - stream: ${stream}`,
        `    key: ${key}`,
        "    sql: SELECT 1",
        "    time_column: t",
      );
    const hashed = failure(replay("hashed"));
    assert.equal(hashed.line, 8);
    assert.match(hashed.message, /replay\.0\.key: the replay key needs `secret`/);
    assert.match(failure(replay("nokey")).message, /unknown key id/);
    assert.match(
      failure(replay("plain", "flight")).message,
      /replay\.0\.stream: unknown stream \(did you mean `flights`\?\)/,
    );
    assert.equal(parseConfigText(replay("plain"), FILE, {}).replay[0]?.speed, 3600);
  });
});

describe("nearest", () => {
  test("views: fields, measures and filters are checked against the stream", () => {
    const view = (...lines: string[]): string =>
      yaml(
        "streams:",
        "  flights:",
        "    time_field: date",
        "    fields: { date: timestamp, delay: integer, origin: string, price: number, tags: json }",
        "views:",
        "  departures:",
        "    stream: flights",
        ...lines,
      );
    const ok = parseConfigText(
      view(
        "    dimensions: [origin]",
        "    measures: { n: count, d: avg(delay), p: p95(delay), o: count_distinct(origin) }",
        "    filters: [{ field: delay, op: '>=', value: 0 }, { field: origin, op: in, value: [SFO] }]",
      ),
      FILE,
      {},
    );
    assert.equal(ok.views.departures?.grain, "minute");
    assert.equal(ok.views.departures?.allowed_lateness, "5m");
    const bad = (lines: string[], what: RegExp, line: number): void => {
      const f = failure(view(...lines));
      assert.match(f.message, what);
      assert.equal(f.line, line);
    };
    bad(
      ["    dimensions: [orign]", "    measures: { n: count }"],
      /`orign` is not a declared field \(did you mean `origin`\?\)/,
      8,
    );
    bad(["    measures:", "      d: avg(origin)"], /avg needs a numeric/, 9);
    bad(["    measures:", "      d: median(delay)"], /use count, sum\(f\)/, 9);
    bad(
      ["    measures:", "      d: count_distinct(price)"],
      /count_distinct counts string, integer or boolean/,
      9,
    );
    bad(["    measures:", "      d: sum"], /sum needs a field/, 9);
    bad(
      ["    measures: { n: count }", "    filters:", "      - { field: delay, op: in, value: 3 }"],
      /`in` takes a list/,
      10,
    );
    bad(
      ["    measures: { n: count }", "    time_field: delay"],
      /the time field must have type `timestamp`/,
      9,
    );
    bad(
      [
        "    measures: { n: count }",
        "    filters:",
        "      - { field: delay, op: '>', value: '5' }",
      ],
      /`delay` is integer: compare it with number values/,
      10,
    );
    const stream = failure(
      yaml(
        "streams: { flights: {} }",
        "views:",
        "  v:",
        "    stream: flight",
        "    measures: { n: count }",
      ),
    );
    assert.match(stream.message, /unknown stream `flight` \(did you mean `flights`\?\)/);
    // A grain whose buckets would straddle the batch layer's days in its time zone.
    const zoned = (zone: string, grain: string): string =>
      yaml(
        "streams: { flights: { fields: { origin: string } } }",
        `batch: { timezone: ${zone} }`,
        "views:",
        "  v:",
        "    stream: flights",
        `    grain: ${grain}`,
        "    measures: { n: count }",
      );
    assert.match(
      failure(zoned("Europe/Paris", "day")).message,
      /day buckets would straddle.*23:00 UTC/,
    );
    assert.match(
      failure(zoned("Asia/Kolkata", "hour")).message,
      /hour buckets would straddle.*18:30 UTC/,
    );
    // Distributed backends name what they need.
    const backends = (...lines: string[]): string =>
      yaml("streams: { flights: { fields: { origin: string } } }", "backends:", ...lines);
    assert.match(failure(backends("  lake: { kind: s3 }")).message, /an s3 lake needs `bucket`/);
    assert.match(
      failure(backends("  lake: { kind: s3, bucket: b, access_key_id: k }")).message,
      /give both access_key_id and secret_access_key/,
    );
    assert.match(failure(backends("  catalog: { kind: postgres }")).message, /needs `url`/);
    assert.match(failure(backends("  stream: { kind: kafka }")).message, /backends\.stream\.kind/);
    const nats = parseConfigText(
      backends(
        "  stream: { kind: nats, replicas: 3 }",
        "  lake: { kind: s3, bucket: lake, endpoint: 'http://127.0.0.1:9000', force_path_style: true }",
        "  catalog: { kind: postgres, url: 'postgres://postgres@127.0.0.1/test' }",
      ),
      FILE,
      {},
    );
    assert.deepEqual(
      [nats.backends.stream.kind, nats.backends.stream.replicas, nats.backends.lake.bucket],
      ["nats", 3, "lake"],
    );
    for (const [zone, grain] of [
      ["Europe/Paris", "hour"],
      ["Asia/Kolkata", "minute"],
      ["UTC", "day"],
    ])
      assert.equal(parseConfigText(zoned(zone!, grain!), FILE, {}).views.v?.grain, grain);
  });

  test("checks dashboards: views, measures, dimensions, placeholders, view xor sql", () => {
    const dash = (...chart: string[]): string =>
      yaml(
        "streams:",
        "  flights: { fields: { origin: string, delay: integer } }",
        "views:",
        "  departures: { stream: flights, dimensions: [origin], measures: { flights: count } }",
        "dashboards:",
        "  ops:",
        "    filters:",
        "      origin: { values: SELECT 1 }",
        "    charts:",
        "      c:",
        ...chart.map((l) => `        ${l}`),
      );
    const ok = parseConfigText(
      dash("title: T", "type: line", "view: departures", "by: origin", "refresh: 2s"),
      FILE,
      {},
    );
    assert.equal(ok.dashboards.ops?.range, "24h");
    const unknownView = failure(dash("title: T", "type: line", "view: departure"));
    assert.match(unknownView.message, /unknown view `departure`.*departures/);
    assert.equal(unknownView.line, 13);
    assert.match(
      failure(dash("title: T", "type: line", "view: departures", "measures: [flight]")).message,
      /`flight` is not a measure of view departures/,
    );
    assert.match(
      failure(dash("title: T", "type: line", "view: departures", "by: dest")).message,
      /`dest` is not a dimension/,
    );
    assert.match(
      failure(dash("title: T", "type: bar", "sql: SELECT 1 WHERE {{filter:dest}}")).message,
      /unknown placeholder \{\{filter:dest\}\}/,
    );
    assert.match(
      failure(dash("title: T", "type: bar", "sql: SELECT 1", "view: departures")).message,
      /either `view` or `sql`/,
    );
    assert.match(
      failure(dash("title: T", "type: bar", "sql: SELECT 1", "by: origin")).message,
      /`by` applies to view charts/,
    );
  });

  test("suggests the closest candidate within a typo's distance", () => {
    assert.equal(nearest("time_feild", ["id_field", "time_field", "fields"]), "time_field");
    assert.equal(nearest("Fields", ["fields", "format"]), "fields");
    assert.equal(nearest("zzzzzz", ["fields", "format"]), undefined);
    assert.equal(nearest("x", []), undefined);
  });
});

describe("loadPipeline", () => {
  test("the flights example loads and resolves", () => {
    const dir = fileURLToPath(new URL("../../examples/flights", import.meta.url));
    const p = loadPipeline(dir, {});
    assert.equal(p.name, "flights-demo");
    assert.equal(p.root, dir);
    assert.equal(p.lakeDir, join(dir, "lake"));
    assert.equal(p.dataDir, join(dir, ".tributary"));
    const flights = p.streams.get("flights");
    assert.ok(flights);
    assert.equal(flights.idField, "flight_id");
    assert.equal(flights.timeField, "date");
    assert.deepEqual(
      flights.fields.map((f) => [f.name, f.type, f.required]),
      [
        ["flight_id", "string", true],
        ["date", "timestamp", true],
        ["delay", "integer", false],
        ["distance", "integer", false],
        ["origin", "string", true],
        ["destination", "string", true],
      ],
    );
    assert.equal(flights.dedupWindowMs, 600_000);
    assert.equal(flights.retainMs, 3_600_000);
    const web = p.streams.get("web");
    assert.equal(web?.format, "segment");
    assert.equal(web?.idField, "messageId");
    assert.deepEqual(
      p.keys.map((k) => k.id),
      ["demo", "demo-read", "demo-admin"],
    );
    assert.equal(p.keys[0]?.secretSha256, sha256Hex("demo-write-key"));
    assert.equal(p.keys[0]?.segmentStream, "web");
    assert.equal(p.lake.flushMaxAgeMs, 5_000);
    assert.equal(p.lake.flushMaxBytes, 16 * 1024 * 1024);
    assert.equal(p.replay.length, 1);
  });

  test("a folder without tributary.yaml is TRB_CONFIG_NOT_FOUND; a file path is loaded as is", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "trb-config-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    assert.throws(
      () => loadPipeline(dir, {}),
      (e: unknown) => isTributaryError(e, "TRB_CONFIG_NOT_FOUND"),
    );
    const file = join(dir, "other.yaml");
    writeFileSync(
      file,
      yaml("name: custom", "streams:", "  s: {}", "lake:", "  location: /abs/lake"),
    );
    const p = loadPipeline(file, {});
    assert.equal(p.name, "custom");
    assert.equal(p.lakeDir, "/abs/lake");
    assert.equal(p.dataDir, join(dir, ".tributary"));
  });
});
