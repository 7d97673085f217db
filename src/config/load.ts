// Loads tributary.yaml: YAML with line numbers, ${ENV} interpolation, schema validation and cross-checks.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { LineCounter, isMap, isNode, parseDocument, type Document } from "yaml";
import { z } from "zod";
import { TributaryError } from "../errors.js";
import { Cron } from "croner";
import { resolvePackageFile } from "./files.js";
import { shapeAt, valueAt } from "./zod-paths.js";
import { configSchema, type PipelineConfig } from "./schema.js";
import { resolvePipeline, sha256Hex, type Pipeline } from "./pipeline.js";

/** The config file name looked for in a project folder. */
export const CONFIG_FILE = "tributary.yaml";

/** Finds the config file for a project folder or a file path. */
export function findConfigFile(target = "."): string {
  const path = resolve(target);
  if (existsSync(path) && statSync(path).isFile()) return path;
  const file = join(path, CONFIG_FILE);
  if (!existsSync(file)) {
    throw new TributaryError(
      "TRB_CONFIG_NOT_FOUND",
      `No ${CONFIG_FILE} in ${path}; run \`tributary init ${target}\`.`,
    );
  }
  return file;
}

/**
 * Loads and validates a pipeline.
 * @example const pipeline = loadPipeline("examples/flights");
 */
export function loadPipeline(target = ".", env: NodeJS.ProcessEnv = process.env): Pipeline {
  const file = findConfigFile(target);
  const config = parseConfigText(readFileSync(file, "utf8"), file, env);
  return resolvePipeline(config, dirname(file));
}

/** Parses and validates config text; errors name the file, line and the fix. */
export function parseConfigText(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): PipelineConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const pos = lineCounter.linePos(err.pos[0]);
    throw configError(file, pos.line, `YAML syntax: ${err.message.split("\n")[0]}`);
  }
  const where = (path: readonly PropertyKey[]): number => yamlLineOf(doc, lineCounter, path);
  const raw = interpolate(doc.toJS() ?? {}, env, file, where);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // An unknown key is reported at its own line, not at the first line of the map holding it.
    const at = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]!] : issue.path;
    throw configError(file, where(at), describeIssue(issue, raw));
  }
  crossCheck(parsed.data, file, where, dirname(resolve(file)));
  return parsed.data;
}

function configError(file: string, line: number, what: string): TributaryError {
  return new TributaryError("TRB_CONFIG_INVALID", `${file}:${line}: ${what}`, {
    details: { file, line },
  });
}

/**
 * The 1-based line of the deepest node of `path` that exists in a parsed YAML document (a map key's
 * own line), for errors that name `file:line`.
 */
export function yamlLineOf(
  doc: Document,
  counter: LineCounter,
  path: readonly PropertyKey[],
): number {
  for (let n = path.length; n >= 0; n--) {
    // A map key: find the pair so the line is that of the key itself (a map value starts a line later).
    const parent = doc.getIn(path.slice(0, n - 1) as unknown[], true);
    if (n > 0 && isMap(parent)) {
      const pair = parent.items.find(
        (p) => isNode(p.key) && (p.key as { value?: unknown }).value === path[n - 1],
      );
      if (pair && isNode(pair.key) && pair.key.range)
        return counter.linePos(pair.key.range[0]).line;
    }
    const node = doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return 1;
}

function interpolate(
  value: unknown,
  env: NodeJS.ProcessEnv,
  file: string,
  where: (p: PropertyKey[]) => number,
  path: PropertyKey[] = [],
): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined)
        throw configError(file, where(path), `environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value))
    return value.map((v, i) => interpolate(v, env, file, where, [...path, i]));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, env, file, where, [...path, k])]),
    );
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const at = issue.path.length > 0 ? issue.path.join(".") : "(top level)";
  if (issue.code === "unrecognized_keys") {
    const parentSchema = shapeAt(configSchema, issue.path);
    const known = parentSchema ? Object.keys(parentSchema) : [];
    const parts = issue.keys.map((k) => {
      const near = nearest(k, known);
      return near ? `unknown key \`${k}\` (did you mean \`${near}\`?)` : `unknown key \`${k}\``;
    });
    return `${at}: ${parts.join(", ")}; valid keys: ${known.join(", ")}`;
  }
  if (issue.code === "invalid_type" && valueAt(raw, issue.path) === undefined) {
    return `${at}: missing required key`;
  }
  return `${at}: ${issue.message}`;
}

/** The candidate closest to `word` by edit distance, if close enough to be a likely typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function crossCheck(
  config: PipelineConfig,
  file: string,
  where: (p: PropertyKey[]) => number,
  root: string,
): void {
  const streams = Object.keys(config.streams);
  const fail = (path: PropertyKey[], what: string, names: string[] = []): never => {
    const value = String(valueAt(config, path) ?? "");
    const near = nearest(value, names);
    throw configError(
      file,
      where(path),
      `${path.join(".")}: ${what}${near ? ` (did you mean \`${near}\`?)` : ""}`,
    );
  };
  const { lake, catalog } = config.backends;
  if (lake.kind === "s3") {
    if (lake.bucket === undefined) fail(["backends", "lake", "kind"], "an s3 lake needs `bucket`");
    if ((lake.access_key_id === undefined) !== (lake.secret_access_key === undefined))
      fail(
        [
          "backends",
          "lake",
          lake.access_key_id === undefined ? "secret_access_key" : "access_key_id",
        ],
        "give both access_key_id and secret_access_key, or neither (the AWS SDK's chain)",
      );
  }
  if (config.backends.speed.kind !== "catalog" && config.backends.speed.url === undefined)
    fail(
      ["backends", "speed", "kind"],
      `a ${config.backends.speed.kind} speed store needs \`url\``,
    );
  if (
    config.backends.stream.partitions > 1 &&
    config.backends.speed.kind === "catalog" &&
    Object.keys(config.views).length > 0
  )
    fail(
      ["backends", "speed", "kind"],
      "a stream of several partitions keeps a speed checkpoint per partition: the views need a speed store (kind: postgres or redis)",
    );
  if (catalog.kind === "postgres" && catalog.url === undefined)
    fail(
      ["backends", "catalog", "kind"],
      "a postgres catalog needs `url` (e.g. url: ${DATABASE_URL})",
    );
  for (const [name, s] of Object.entries(config.streams)) {
    if (s.format === "segment" && Object.keys(s.fields).length > 0) {
      fail(["streams", name, "fields"], "segment streams have fixed columns; remove `fields`");
    }
    const fields = Object.keys(s.fields);
    for (const k of ["id_field", "time_field", "partition_key"] as const) {
      const f = s[k];
      if (f !== undefined && s.format === "json" && !fields.includes(f)) {
        fail(["streams", name, k], `\`${f}\` is not a declared field`, fields);
      }
    }
    const tf = s.time_field ? s.fields[s.time_field] : undefined;
    if (tf !== undefined && (typeof tf === "string" ? tf : tf.type) !== "timestamp") {
      fail(["streams", name, "time_field"], "the time field must have type `timestamp`");
    }
  }
  const keyIds = new Set<string>();
  config.keys.forEach((k, i) => {
    if (keyIds.has(k.id)) fail(["keys", i, "id"], `duplicate key id \`${k.id}\``);
    keyIds.add(k.id);
    k.scopes.forEach((scope, j) => {
      const m = /^write:([a-z][a-z0-9_]*)$/.exec(scope);
      if (m && !streams.includes(m[1]!))
        fail(
          ["keys", i, "scopes", j],
          `unknown stream \`${m[1]}\``,
          streams.map((s) => `write:${s}`),
        );
    });
    if (k.segment_stream !== undefined) {
      if (!streams.includes(k.segment_stream))
        fail(["keys", i, "segment_stream"], "unknown stream", streams);
      else if (config.streams[k.segment_stream]!.format !== "segment") {
        fail(["keys", i, "segment_stream"], "that stream needs `format: segment`");
      }
    }
    if (
      k.secret !== undefined &&
      k.secret_sha256 !== undefined &&
      sha256Hex(k.secret) !== k.secret_sha256
    ) {
      fail(["keys", i, "secret_sha256"], "does not match `secret`; keep one of the two");
    }
  });
  const reserved = ["raw", "dlq", "seed", "view", "view_state"];
  config.batch.layers.forEach((layer, i) => {
    if (reserved.includes(layer))
      fail(["batch", "layers", i], `\`${layer}\` is reserved (${reserved.join(", ")})`);
    if (config.batch.layers.indexOf(layer) !== i)
      fail(["batch", "layers", i], `duplicate layer \`${layer}\``);
  });
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: config.batch.timezone });
  } catch {
    fail(["batch", "timezone"], "not an IANA time zone (e.g. UTC, Europe/Paris)");
  }
  const clock = config.batch.clock;
  if (clock !== "wall") {
    const m = /^stream:(.+)$/.exec(clock);
    if (!m) fail(["batch", "clock"], "use `wall` or `stream:<stream>`");
    else if (!streams.includes(m[1]!))
      fail(
        ["batch", "clock"],
        `unknown stream \`${m[1]}\``,
        streams.map((s) => `stream:${s}`),
      );
  }
  if (config.batch.schedule !== undefined) {
    try {
      new Cron(config.batch.schedule, { paused: true });
    } catch (e) {
      fail(["batch", "schedule"], `not a cron expression: ${(e as Error).message}`);
    }
  }
  for (const [name, seed] of Object.entries(config.seeds)) {
    let path: string | undefined;
    try {
      path = resolvePackageFile(seed.path, root);
    } catch (e) {
      fail(["seeds", name, "path"], (e as Error).message);
    }
    if (path !== undefined && !existsSync(path))
      fail(["seeds", name, "path"], `no file at ${path}`);
    if (path !== undefined && !/\.(csv|tsv|parquet)$/i.test(path))
      fail(["seeds", name, "path"], "a seed is a .csv, .tsv or .parquet file");
  }
  const viewNames = Object.keys(config.views);
  for (const [name, d] of Object.entries(config.dashboards)) {
    for (const [id, c] of Object.entries(d.charts)) {
      const at = (...rest: PropertyKey[]): PropertyKey[] => [
        "dashboards",
        name,
        "charts",
        id,
        ...rest,
      ];
      if (c.sql !== undefined) {
        const bad = unknownPlaceholders(c.sql, Object.keys(d.filters));
        if (bad.length > 0)
          fail(
            at("sql"),
            `unknown placeholder ${bad[0]}; use {{from}}, {{to}} or {{filter:<name>}} of a declared filter`,
          );
      }
      if (c.view === undefined) {
        for (const k of ["measures", "by", "grain"] as const)
          if (c[k] !== undefined)
            fail(at(k), `\`${k}\` applies to view charts; this one has \`sql\``);
        continue;
      }
      for (const k of ["x", "y", "series"] as const)
        if (c[k] !== undefined)
          fail(at(k), `\`${k}\` applies to SQL charts; a view chart draws its buckets`);
      const v = config.views[c.view];
      if (!v) {
        fail(at("view"), `unknown view \`${c.view}\``, viewNames);
        continue;
      }
      const measures = Object.keys(v.measures);
      c.measures?.forEach((m, j) => {
        if (!measures.includes(m))
          fail(at("measures", j), `\`${m}\` is not a measure of view ${c.view}`, measures);
      });
      if (c.by !== undefined && !v.dimensions.includes(c.by))
        fail(at("by"), `\`${c.by}\` is not a dimension of view ${c.view}`, v.dimensions);
    }
  }
  for (const [name, v] of Object.entries(config.views)) {
    const at = (...rest: PropertyKey[]): PropertyKey[] => ["views", name, ...rest];
    const stream = config.streams[v.stream];
    if (!stream) {
      fail(at("stream"), `unknown stream \`${v.stream}\``, streams);
      continue;
    }
    const types = new Map<string, string>(
      Object.entries(stream.fields).map(([f, spec]) => [
        f,
        typeof spec === "string" ? spec : spec.type,
      ]),
    );
    const fields = [...types.keys()];
    if (v.time_field !== undefined) {
      if (!types.has(v.time_field))
        fail(at("time_field"), `\`${v.time_field}\` is not a declared field`, fields);
      else if (types.get(v.time_field) !== "timestamp")
        fail(at("time_field"), "the time field must have type `timestamp`");
    }
    // The batch layer cuts at day starts in batch.timezone: a bucket must not straddle one, or
    // its two halves would sit in two day partitions and the cut would split it.
    const misaligned = dayStartsOffGrain(config.batch.timezone, v.grain ?? "minute");
    if (misaligned !== undefined)
      fail(
        at("grain"),
        `${v.grain} buckets would straddle the batch layer's days in ${config.batch.timezone} (a day starts at ${misaligned}); use a finer grain or batch.timezone: UTC`,
      );
    for (const [j, d] of v.dimensions.entries()) {
      if (d === "day" || d === "bucket")
        fail(
          at("dimensions", j),
          "`day` and `bucket` are the view's own columns; use another field",
        );
    }
    for (const measure of Object.keys(v.measures)) {
      if (measure === "day" || measure === "bucket" || v.dimensions.includes(measure))
        fail(
          at("measures", measure),
          "a measure needs a name other than `day`, `bucket` and the dimensions",
        );
    }
    v.dimensions.forEach((d, j) => {
      if (!types.has(d)) fail(at("dimensions", j), `\`${d}\` is not a declared field`, fields);
      else if (!["string", "integer", "boolean"].includes(types.get(d)!))
        fail(at("dimensions", j), "a dimension is a string, integer or boolean field");
    });
    for (const [measure, text] of Object.entries(v.measures)) {
      const m =
        /^\s*(count|sum|min|max|avg|count_distinct|p(\d{1,2}(?:\.\d+)?))\s*(?:\(\s*([a-z][a-z0-9_]*)?\s*\))?\s*$/.exec(
          text,
        );
      if (!m) {
        fail(
          at("measures", measure),
          "use count, sum(f), min(f), max(f), avg(f), count_distinct(f) or a quantile such as p95(f)",
        );
        continue;
      }
      const [, kind, pct, field] = m;
      if (kind === "count") {
        if (field !== undefined && !types.has(field))
          fail(at("measures", measure), `\`${field}\` is not a declared field`, fields);
        continue;
      }
      if (pct !== undefined && !(Number(pct) > 0 && Number(pct) < 100))
        fail(at("measures", measure), "a quantile is p1..p99 (e.g. p50, p95, p99.9)");
      if (field === undefined) {
        fail(
          at("measures", measure),
          `${kind} needs a field, e.g. ${kind}(${fields[0] ?? "field"})`,
        );
        continue;
      }
      if (!types.has(field)) {
        fail(at("measures", measure), `\`${field}\` is not a declared field`, fields);
        continue;
      }
      const type = types.get(field)!;
      if (kind === "count_distinct") {
        if (!["string", "integer", "boolean"].includes(type))
          fail(at("measures", measure), "count_distinct counts string, integer or boolean fields");
      } else if (!["integer", "number"].includes(type)) {
        fail(at("measures", measure), `${kind} needs a numeric (integer or number) field`);
      }
    }
    v.filters.forEach((f, j) => {
      if (!types.has(f.field))
        fail(at("filters", j, "field"), `\`${f.field}\` is not a declared field`, fields);
      const type = types.get(f.field)!;
      const want = (
        { integer: "number", number: "number", string: "string", boolean: "boolean" } as Record<
          string,
          string
        >
      )[type];
      if (want === undefined)
        fail(
          at("filters", j, "field"),
          "filters compare string, integer, number or boolean fields",
        );
      const values = f.value === undefined ? [] : Array.isArray(f.value) ? f.value : [f.value];
      if (values.some((x) => typeof x !== want))
        fail(
          at("filters", j, "value"),
          `\`${f.field}\` is ${type}: compare it with ${want} values`,
        );
      const list = f.op === "in" || f.op === "not_in";
      const none = f.op === "is_null" || f.op === "not_null";
      if (none && f.value !== undefined)
        fail(at("filters", j, "value"), `\`${f.op}\` takes no value`);
      if (!none && f.value === undefined) fail(at("filters", j), `\`${f.op}\` needs a value`);
      if (!none && f.value !== undefined && list !== Array.isArray(f.value))
        fail(
          at("filters", j, "value"),
          list ? `\`${f.op}\` takes a list` : `\`${f.op}\` takes one value`,
        );
    });
  }
  config.replay.forEach((r, i) => {
    if (!streams.includes(r.stream)) fail(["replay", i, "stream"], "unknown stream", streams);
    const key = config.keys.find((k) => k.id === r.key);
    if (!key) fail(["replay", i, "key"], "unknown key id", [...keyIds]);
    else if (key.secret === undefined)
      fail(["replay", i, "key"], "the replay key needs `secret` (not only its hash)");
  });
}

/**
 * A day start in `timeZone` (as UTC `HH:MM`) that is not a multiple of the grain, over two years
 * of daylight-saving changes; undefined when every day starts on a bucket boundary.
 */
function dayStartsOffGrain(timeZone: string, grain: string): string | undefined {
  const grainMinutes = grain === "day" ? 1440 : grain === "hour" ? 60 : 1;
  if (grainMinutes === 1) return undefined;
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" });
  } catch {
    return undefined; // reported as an unknown zone
  }
  for (let month = 0; month < 24; month++) {
    const when = Date.UTC(2024, month, 1);
    const name = format.formatToParts(when).find((p) => p.type === "timeZoneName")?.value ?? "";
    const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
    const offset = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
    // Local midnight is UTC minute (-offset) of the day.
    const start = ((-offset % 1440) + 1440) % 1440;
    if (start % grainMinutes !== 0)
      return `${String(Math.floor(start / 60)).padStart(2, "0")}:${String(start % 60).padStart(2, "0")} UTC`;
  }
  return undefined;
}

/** The `{{...}}` placeholders of a dashboard chart's SQL other than from, to and declared filters. */
function unknownPlaceholders(sql: string, filters: readonly string[]): string[] {
  const bad: string[] = [];
  for (const m of sql.matchAll(/\{\{([^}]*)\}\}/g)) {
    const name = m[1]!.trim();
    if (name === "from" || name === "to") continue;
    if (name.startsWith("filter:") && filters.includes(name.slice(7))) continue;
    bad.push(m[0]);
  }
  return bad;
}
