// Read-only SQL over the latest catalog snapshot: DuckDB views over committed files, sandboxed and limited.
import { mkdirSync } from "node:fs";
import {
  DuckDBInstance,
  JsonDuckDBValueConverter,
  type DuckDBConnection,
  type Json,
} from "@duckdb/node-api";
import type { CatalogStore, ObjectStore } from "../backends/contracts/index.js";
import { TributaryError, isTributaryError } from "../errors.js";
import { datasetViewSql, quoteString } from "../lake/index.js";
import { metrics } from "../telemetry.js";
import { guardSql } from "./sql-guard.js";
import {
  VIEW_SCHEMA,
  loadSpeedRows,
  speedTablesSql,
  speedVersion,
  sqlViewSelect,
  type SqlView,
} from "./sql-views.js";

/** A query result as the HTTP API returns it. */
export interface QueryResult {
  readonly columns: { name: string; type: string }[];
  readonly rows: Json[][];
  readonly snapshot: number;
}

/** Limits and places of a QueryEngine. */
export interface QueryEngineOptions {
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
  /** Folder DuckDB may read: the lake root. */
  readonly lakeDir: string;
  /** Other folders DuckDB may read lake files from (an S3 lake's local copies). */
  readonly extraReadDirs?: readonly string[];
  /** Folder for DuckDB's spill files. */
  readonly tempDir: string;
  readonly memoryLimit: string;
  readonly maxRows: number;
  readonly timeoutMs: number;
  readonly maxConcurrent: number;
}

/** Sequence of the private catalogs of time-travel queries. */
let travelSeq = 0;

const INTEGER_TYPES = new Set(["BIGINT", "HUGEINT", "UBIGINT", "UHUGEINT"]);

/**
 * Serves SQL over catalog datasets. The DuckDB instance may read only the lake folder, cannot load
 * extensions, and its configuration is locked; every statement also passes the SQL guard.
 *
 * @example
 * const engine = await QueryEngine.create({ ... });
 * const { columns, rows } = await engine.query("SELECT count(*) FROM raw.flights");
 */
export class QueryEngine {
  readonly #o: QueryEngineOptions;
  readonly #db: DuckDBInstance;
  readonly #admin: DuckDBConnection;
  #snapshot = -1;
  #datasets = new Set<string>();
  #refreshing: Promise<void> | undefined;
  #running = 0;
  #queue: (() => void)[] = [];
  #views = new Map<string, SqlView>();
  /** Loads the speed rows of views (its own connection; one load at a time). */
  #speedConn: DuckDBConnection | undefined;
  #speedLoads: Promise<unknown> = Promise.resolve();
  #speedLoaded = new Map<string, string>();

  private constructor(o: QueryEngineOptions, db: DuckDBInstance, admin: DuckDBConnection) {
    this.#o = o;
    this.#db = db;
    this.#admin = admin;
  }

  static async create(o: QueryEngineOptions): Promise<QueryEngine> {
    mkdirSync(o.tempDir, { recursive: true });
    const readDirs = [o.lakeDir, ...(o.extraReadDirs ?? [])];
    for (const d of readDirs) mkdirSync(d, { recursive: true });
    const db = await DuckDBInstance.create(":memory:", {
      threads: "2",
      memory_limit: o.memoryLimit,
      temp_directory: o.tempDir,
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
    });
    const admin = await db.connect();
    // Order matters: allowed_directories can only be set while external access is on.
    await admin.run(`SET allowed_directories = [${readDirs.map(quoteString).join(", ")}]`);
    await admin.run("SET enable_external_access = false");
    await admin.run("SET lock_configuration = true");
    return new QueryEngine(o, db, admin);
  }

  /**
   * Serves lambda views as SQL `view.<name>`: the batch layer's rows before the cut (finalized
   * from the view_state partitions of the snapshot) and the speed layer's after it (loaded before
   * each query that reads the view, when they changed).
   */
  async attachViews(views: readonly SqlView[]): Promise<void> {
    for (const sql of speedTablesSql(views)) await this.#admin.run(sql);
    for (const v of views) this.#views.set(v.node.name, v);
    this.#speedConn ??= await this.#db.connect();
    this.#snapshot = -1;
  }

  /** Datasets queryable now, as `layer.name`. */
  get datasets(): ReadonlySet<string> {
    return this.#datasets;
  }

  /** Rebuilds the views when the catalog has a newer snapshot. */
  async refresh(): Promise<void> {
    while (this.#refreshing) await this.#refreshing;
    const latest = await this.#o.catalog.latestSnapshot();
    if (latest === this.#snapshot && this.#datasets.size > 0) return;
    this.#refreshing = this.#rebuild(latest).finally(() => {
      this.#refreshing = undefined;
    });
    await this.#refreshing;
  }

  async #rebuild(snapshot: number): Promise<void> {
    this.#datasets = await this.#createViews(this.#admin, snapshot, "");
    this.#snapshot = snapshot;
  }

  /** Creates a view per dataset over its files at `snapshot`, in `catalog` (default: the main one). */
  async #createViews(
    conn: DuckDBConnection,
    snapshot: number,
    catalog: string,
  ): Promise<Set<string>> {
    const prefix = catalog === "" ? "" : `${ident(catalog)}.`;
    const datasets = await this.#o.catalog.datasets();
    const names = new Set<string>();
    for (const ds of datasets) {
      // Partial states of lambda views are internal: views are read through GET /v1/views.
      if (ds.layer === "view_state") continue;
      await conn.run(`CREATE SCHEMA IF NOT EXISTS ${prefix}${ident(ds.layer)}`);
      const files = await this.#o.catalog.files(ds, snapshot);
      const local = await Promise.all(
        files.map(async (f) => ({
          path: await this.#o.lake.localPath(f.path),
          schemaVersion: f.schemaVersion,
        })),
      );
      await conn.run(
        `CREATE OR REPLACE VIEW ${prefix}${ident(ds.layer)}.${ident(ds.name)} AS ${datasetViewSql(ds, local)}`,
      );
      names.add(`${ds.layer}.${ds.name}`);
    }
    // Lambda views: not in time-travel catalogs (the speed rows exist only now).
    if (catalog === "" && this.#views.size > 0) {
      await conn.run(`CREATE SCHEMA IF NOT EXISTS ${ident(VIEW_SCHEMA)}`);
      for (const view of this.#views.values()) {
        const ds = datasets.find((d) => d.layer === "view_state" && d.name === view.node.name);
        let statesSql: string | undefined;
        if (ds) {
          const files = await this.#o.catalog.files(ds, snapshot);
          if (files.length > 0) {
            const local = await Promise.all(
              files.map(async (f) => ({
                path: await this.#o.lake.localPath(f.path),
                schemaVersion: f.schemaVersion,
              })),
            );
            statesSql = datasetViewSql(ds, local);
          }
        }
        await conn.run(
          `CREATE OR REPLACE VIEW ${ident(VIEW_SCHEMA)}.${ident(view.node.name)} AS ${sqlViewSelect(view, statesSql)}`,
        );
        names.add(`${VIEW_SCHEMA}.${view.node.name}`);
      }
    }
    return names;
  }

  /**
   * Runs one read-only SELECT. `canRead` decides per dataset (scopes); the guard rejects
   * everything else. Throws coded errors for bad SQL, timeouts, oversized results and overload.
   */
  async query(
    sql: string,
    canRead: (dataset: string) => void = () => undefined,
    options: { snapshot?: number } = {},
  ): Promise<QueryResult> {
    const started = performance.now();
    let outcome = "ok";
    try {
      await this.#acquire();
      try {
        await this.refresh();
        const conn = await this.#db.connect();
        const travel = options.snapshot !== undefined && options.snapshot !== this.#snapshot;
        const catalog = `snapshot_${++travelSeq}`;
        try {
          let snapshot = this.#snapshot;
          let names = this.#datasets;
          if (travel) {
            // Time travel: the views of that snapshot, in a private catalog of this connection.
            snapshot = options.snapshot!;
            if (!Number.isSafeInteger(snapshot) || snapshot < 0 || snapshot > this.#snapshot) {
              throw new TributaryError(
                "TRB_SERVE_UNKNOWN_SNAPSHOT",
                `No snapshot ${snapshot}; the latest is ${this.#snapshot}.`,
              );
            }
            await conn.run(`ATTACH ':memory:' AS ${ident(catalog)}`);
            names = await this.#createViews(conn, snapshot, catalog);
            await conn.run(`USE ${ident(catalog)}`);
          }
          const { datasets } = await guardSql(conn, sql, names);
          for (const d of datasets) canRead(d);
          for (const d of datasets) {
            const view = d.startsWith(`${VIEW_SCHEMA}.`)
              ? this.#views.get(d.slice(VIEW_SCHEMA.length + 1))
              : undefined;
            if (view && !travel) await this.#loadSpeed(view);
          }
          return { ...(await this.#run(conn, sql)), snapshot };
        } finally {
          if (travel) {
            await conn.run("USE memory").catch(() => undefined);
            await conn.run(`DETACH DATABASE IF EXISTS ${ident(catalog)}`).catch(() => undefined);
          }
          conn.closeSync();
        }
      } finally {
        this.#release();
      }
    } catch (e) {
      outcome = isTributaryError(e) ? e.code : "TRB_INTERNAL";
      throw e;
    } finally {
      metrics.serveQueries.inc({ outcome });
      metrics.serveQuerySeconds.observe((performance.now() - started) / 1000);
    }
  }

  /** Loads a view's speed rows when they changed since the last load (loads run one at a time). */
  #loadSpeed(view: SqlView): Promise<void> {
    const load = this.#speedLoads.then(async () => {
      const version = await speedVersion(view);
      if (this.#speedLoaded.get(view.node.name) === version) return;
      await loadSpeedRows(this.#speedConn!, view);
      this.#speedLoaded.set(view.node.name, version);
    });
    this.#speedLoads = load.catch(() => undefined);
    return load;
  }

  async #run(conn: DuckDBConnection, sql: string): Promise<Omit<QueryResult, "snapshot">> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      conn.interrupt();
    }, this.#o.timeoutMs);
    try {
      const result = await conn.stream(sql);
      const names = result.columnNames();
      const types = result.columnTypes().map((t) => t.toString());
      const rows: Json[][] = [];
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        if (rows.length + chunk.rowCount > this.#o.maxRows) {
          throw new TributaryError(
            "TRB_SERVE_RESULT_TOO_LARGE",
            `The result has more than ${this.#o.maxRows} rows; add LIMIT or aggregate.`,
          );
        }
        for (const row of chunk.convertRows(JsonDuckDBValueConverter)) rows.push(row as Json[]);
      }
      const intCols = types.flatMap((t, i) => (INTEGER_TYPES.has(t) ? [i] : []));
      if (intCols.length > 0) {
        for (const row of rows) {
          for (const i of intCols) {
            const v = row[i];
            if (typeof v === "string" && Number.isSafeInteger(Number(v))) row[i] = Number(v);
          }
        }
      }
      return { columns: names.map((name, i) => ({ name, type: types[i]! })), rows };
    } catch (e) {
      if (isTributaryError(e)) throw e;
      if (timedOut) {
        throw new TributaryError(
          "TRB_SERVE_QUERY_TIMEOUT",
          `The query ran past ${this.#o.timeoutMs} ms; narrow it or add filters.`,
          { cause: e },
        );
      }
      const msg = (e as Error).message;
      if (/Permission Error|disabled by configuration|locked/i.test(msg)) {
        throw new TributaryError("TRB_SERVE_SQL_FORBIDDEN", `Not allowed: ${firstLine(msg)}`, {
          cause: e,
        });
      }
      throw new TributaryError("TRB_SERVE_SQL_FAILED", firstLine(msg), { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  async #acquire(): Promise<void> {
    if (this.#running < this.#o.maxConcurrent) {
      this.#running++;
      return;
    }
    if (this.#queue.length >= this.#o.maxConcurrent) {
      throw new TributaryError("TRB_SERVE_BUSY", undefined, { retryAfter: 1 });
    }
    await new Promise<void>((resolve) => this.#queue.push(resolve));
    this.#running++;
  }

  #release(): void {
    this.#running--;
    this.#queue.shift()?.();
  }

  /**
   * Runs trusted SQL written by Tributary itself (view queries over `view_state` files): the same
   * sandboxed engine (lake folder only, locked configuration), without the user SQL guard.
   */
  async readRows(sql: string): Promise<Record<string, unknown>[]> {
    await this.#acquire();
    const conn = await this.#db.connect();
    try {
      return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
    } finally {
      conn.closeSync();
      this.#release();
    }
  }

  close(): void {
    this.#speedConn?.closeSync();
    this.#admin.closeSync();
    this.#db.closeSync();
  }
}

/** A quoted SQL identifier. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}
