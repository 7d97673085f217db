// Loads seed files into the lake as `seed.<name>`: one Parquet file per seed, replaced when the file's hash changes.
import { createHash, randomUUID } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import type { Logger } from "pino";
import type {
  CatalogStore,
  DatasetRef,
  ObjectStore,
  SchemaColumn,
} from "../backends/contracts/index.js";
import type { SeedPlan } from "../config/index.js";
import { TributaryError, isTributaryError } from "../errors.js";
import { quoteString } from "../lake/index.js";
import type { SeedTable } from "./plan.js";

/** Catalog layer of seed tables. */
export const SEED_LAYER = "seed";

/** What `loadSeeds` needs. */
export interface LoadSeedsArgs {
  /** Seeds by name, as resolved from tributary.yaml. */
  readonly seeds: ReadonlyMap<string, SeedPlan>;
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
  /** An open connection whose instance may read the seed files and write `stagingDir`. */
  readonly conn: DuckDBConnection;
  /** Local folder for Parquet being written (same file system as a local lake). */
  readonly stagingDir: string;
  readonly log?: Logger;
}

/**
 * Makes every seed's live file in the lake match the seed file's bytes, and describes the seeds.
 *
 * A seed's lake key is `seed/<name>/<first 16 hex of SHA-256>-<load id>.parquet` (the load id
 * keeps keys unique when a file goes back to earlier bytes). When the dataset's live files are
 * exactly one key of this content, nothing is written and the columns come from the catalog. Otherwise
 * DuckDB reads the file (CSV/TSV with header and type detection, or Parquet), writes it as one
 * zstd Parquet file, and one catalog commit adds it and removes the old live files, so readers see
 * the old seed or the new one, never neither. Old objects stay in the lake for time travel.
 * A crash before the commit leaves the previous seed live and at most an unregistered object,
 * which the batch engine's orphan sweep deletes at its next start.
 *
 * Seeds are loaded one after the other on `conn`; the result is sorted by name.
 * Throws TRB_SEED_INVALID (naming the seed, the file and DuckDB's first error line) when a file
 * cannot be read as a table.
 *
 * @example
 * const seeds = await loadSeeds({ seeds: pipeline.seeds, catalog, lake, conn, stagingDir });
 * // [{ name: "airports", hash: "9f2c…", columns: [{ name: "iata", type: "VARCHAR" }, …], … }]
 */
export async function loadSeeds(args: LoadSeedsArgs): Promise<SeedTable[]> {
  const plans = [...args.seeds.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  const tables: SeedTable[] = [];
  for (const plan of plans) tables.push(await loadSeed(plan, args));
  return tables;
}

/** The start of the lake keys of a seed's Parquet files for a content hash. */
export function seedKeyPrefix(name: string, hash: string): string {
  return `${SEED_LAYER}/${name}/${hash.slice(0, 16)}-`;
}

/**
 * Describes seeds from their files without loading them (for `tributary batch plan` beside a
 * running server): columns as DuckDB reads them, and the content hash.
 */
export async function describeSeeds(
  seeds: ReadonlyMap<string, SeedPlan>,
  conn: DuckDBConnection,
): Promise<SeedTable[]> {
  const out: SeedTable[] = [];
  for (const plan of [...seeds.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    let bytes: Buffer;
    try {
      bytes = await readFile(plan.path);
    } catch (e) {
      throw invalid(plan, (e as Error).message, e);
    }
    let rows;
    try {
      rows = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${readerSql(plan)}`)).getRows();
    } catch (e) {
      throw invalid(plan, `DuckDB cannot read it: ${firstLine((e as Error).message)}`, e);
    }
    out.push({
      name: plan.name,
      path: plan.path,
      columns: rows.map(([name, type]) => ({ name: String(name), type: String(type) })),
      hash: createHash("sha256").update(bytes).digest("hex"),
      description: plan.description,
      owner: plan.owner,
    });
  }
  return out;
}

/**
 * Positions under this consumer version each seed (stream `seed.<name>`): every commit of a seed
 * moves its version by one from the version read before its files were, so when several engines
 * load a seed at once (batch processes starting together) one commit wins and the others, refused
 * (TRB_CATALOG_CONFLICT), look again and find it loaded.
 */
const SEED_CONSUMER = "seed";

/** Tries before a seed that other engines keep changing is given up. */
const SEED_TRIES = 5;

async function loadSeed(plan: SeedPlan, args: LoadSeedsArgs): Promise<SeedTable> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await loadSeedOnce(plan, args);
    } catch (e) {
      if (!isTributaryError(e, "TRB_CATALOG_CONFLICT") || attempt >= SEED_TRIES) throw e;
      args.log?.debug({ seed: plan.name }, "another engine changed the seed; looking again");
    }
  }
}

async function loadSeedOnce(plan: SeedPlan, args: LoadSeedsArgs): Promise<SeedTable> {
  const { catalog, log } = args;
  const ref: DatasetRef = { layer: SEED_LAYER, name: plan.name };
  const reader = readerSql(plan);
  let bytes: Buffer;
  try {
    bytes = await readFile(plan.path);
  } catch (e) {
    throw invalid(plan, (e as Error).message, e);
  }
  const hash = createHash("sha256").update(bytes).digest("hex");
  const prefix = seedKeyPrefix(plan.name, hash);
  const description = seedDescription(plan);
  const table = (columns: readonly SchemaColumn[]): SeedTable => ({
    name: plan.name,
    path: plan.path,
    columns,
    hash,
    description: plan.description,
    owner: plan.owner,
  });

  const version = await catalog.position(SEED_CONSUMER, `${SEED_LAYER}.${plan.name}`, 0);
  const fence = [
    {
      consumer: SEED_CONSUMER,
      stream: `${SEED_LAYER}.${plan.name}`,
      partition: 0,
      from: version,
      to: version + 1,
    },
  ];
  const live = await catalog.files(ref);
  const held = live.find((f) => f.path.startsWith(prefix));
  const current = held ? await catalog.dataset(ref) : undefined;
  if (current) {
    // Same bytes, same key: the live file already holds this content. Refresh only what the
    // config says about the table (no schema version, no snapshot when nothing else is live).
    if (current.description !== description || current.kind !== "seed") {
      await catalog.ensureDataset(ref, {
        kind: "seed",
        description,
        columns: current.columns,
        partitionColumns: [],
      });
    }
    const others = live.filter((f) => f !== held).map((f) => f.path);
    if (others.length > 0) {
      // Only reachable if something else registered files under seed.<name>; the seed wins.
      await catalog.commit({
        dataset: ref,
        add: [],
        remove: others,
        positions: fence,
        summary: `seed ${plan.name} ${hash.slice(0, 16)}`,
      });
    }
    log?.debug({ seed: plan.name, hash: hash.slice(0, 16) }, "seed is current");
    return table(current.columns);
  }

  // A new key per load: going back to earlier bytes must not reuse a key the catalog has seen.
  const key = `${prefix}${randomUUID().slice(0, 8)}.parquet`;
  await mkdir(args.stagingDir, { recursive: true });
  const staged = join(args.stagingDir, `seed-${plan.name}-${randomUUID()}.parquet`);
  try {
    const { columns, rows } = await writeParquet(args.conn, plan, reader, staged);
    const { bytes: size } = await args.lake.putFile(key, staged);
    await catalog.ensureDataset(ref, { kind: "seed", description, columns, partitionColumns: [] });
    const snapshot = await catalog
      .commit({
        dataset: ref,
        add: [{ path: key, partition: {}, rows, bytes: size, minTime: null, maxTime: null }],
        remove: live.map((f) => f.path),
        positions: fence,
        summary: `seed ${plan.name} ${hash.slice(0, 16)}`,
      })
      .catch(async (e: unknown) => {
        // Another engine committed the seed first: this object was never registered.
        if (isTributaryError(e, "TRB_CATALOG_CONFLICT"))
          await args.lake.delete(key).catch(() => {});
        throw e;
      });
    log?.info(
      { seed: plan.name, hash: hash.slice(0, 16), rows, bytes: size, snapshot: snapshot.id },
      "seed loaded",
    );
    return table(columns);
  } finally {
    // putFile moves or copies the staged file; a copy, or a file left by a failure, goes here.
    await rm(staged, { force: true });
  }
}

/**
 * Reads the seed into a temporary table, then writes that to `staged`. Reading first keeps
 * "DuckDB cannot read the file" (TRB_SEED_INVALID) apart from failures to write the staging folder.
 */
async function writeParquet(
  conn: DuckDBConnection,
  plan: SeedPlan,
  reader: string,
  staged: string,
): Promise<{ columns: SchemaColumn[]; rows: number }> {
  const temp = `"__tributary_seed_${randomUUID().replaceAll("-", "")}"`;
  try {
    try {
      await conn.run(`CREATE TEMP TABLE ${temp} AS SELECT * FROM ${reader}`);
    } catch (e) {
      throw invalid(plan, `DuckDB cannot read it: ${firstLine((e as Error).message)}`, e);
    }
    const described = await conn.runAndReadAll(`DESCRIBE ${temp}`);
    const columns = described.getRowObjectsJson().map((r) => ({
      name: String(r.column_name),
      type: String(r.column_type),
    }));
    const copied = await conn.runAndReadAll(
      `COPY ${temp} TO ${quoteString(staged)} (FORMAT parquet, COMPRESSION zstd)`,
    );
    const rows = Number(copied.getRowsJson()[0]?.[0] ?? 0);
    return { columns, rows };
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${temp}`);
  }
}

/** The DuckDB table function that reads a seed file, chosen by its extension. */
function readerSql(plan: SeedPlan): string {
  const path = quoteString(plan.path);
  // Hive detection off: a seed under a folder like `year=2024/` must not gain a column.
  switch (extname(plan.path).toLowerCase()) {
    case ".csv":
      return `read_csv(${path}, header = true, auto_detect = true, hive_partitioning = false)`;
    case ".tsv":
      // The extension names the delimiter; the sniffer could pick `,` in one-column files.
      return `read_csv(${path}, header = true, auto_detect = true, delim = '\t', hive_partitioning = false)`;
    case ".parquet":
      return `read_parquet(${path}, hive_partitioning = false)`;
    default:
      throw invalid(plan, "a seed is a .csv, .tsv or .parquet file");
  }
}

/** The catalog description: the plan's, with the owner (the catalog has no owner field). */
function seedDescription(plan: SeedPlan): string {
  const text = plan.description ?? `Seed table loaded from ${basename(plan.path)}`;
  return plan.owner === undefined ? text : `${text} (owner: ${plan.owner})`;
}

function invalid(plan: SeedPlan, why: string, cause?: unknown): TributaryError {
  return new TributaryError("TRB_SEED_INVALID", `seed ${plan.name} (${plan.path}): ${why}`, {
    cause,
  });
}

function firstLine(message: string): string {
  return message.split("\n", 1)[0]!.trim();
}
