// Opens PostgreSQL for the distributed backends: a pool over one schema (pg loaded lazily), transactions with retry.
import { createHash } from "node:crypto";
import type { Pool, PoolClient, QueryResultRow } from "pg";
import { TributaryError } from "../../errors.js";

/** Options of `connectPostgres`. */
export interface PostgresOptions {
  /** Connection string, e.g. `postgres://tributary@db.internal:5432/tributary`. */
  readonly url: string;
  /**
   * Schema that holds every table, created if missing (default `tributary`). Lowercase letters,
   * digits and `_`, so it is one unquoted-identical name in SQL, logs and `psql`.
   */
  readonly schema?: string;
  /** Most connections the pool opens (default 10). */
  readonly maxConnections?: number;
}

/** What a query resolves to. */
export interface PgResult<R> {
  readonly rows: R[];
  /** Rows the statement inserted, updated, deleted or returned. */
  readonly rowCount: number;
}

/** Runs statements: the pool, or the client of one transaction. */
export interface PgQueryable {
  query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<PgResult<R>>;
}

/** The client of one transaction. */
export interface PgTransaction extends PgQueryable {
  /**
   * Waits for, then holds until the transaction ends, the advisory lock `name` of this schema:
   * every holder of the same name runs one at a time, in every process. Statements after it see
   * whatever the previous holder committed (READ COMMITTED takes a snapshot per statement).
   */
  lock(name: string): Promise<void>;
}

/** The schema used when none is given. */
export const DEFAULT_SCHEMA = "tributary";

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** SQLSTATEs after which the whole transaction may run again: serialization failure, deadlock. */
const RETRYABLE = new Set(["40001", "40P01"]);
const MAX_ATTEMPTS = 5;

/** pg's type id of BIGINT, which it returns as a string by default. */
const INT8_OID = 20;

/**
 * A pool of connections to one database, with every table in one schema.
 * @example
 * const db = await connectPostgres({ url: "postgres://postgres@127.0.0.1:5432/test" });
 * await db.transaction(async (tx) => { await tx.lock("commit"); await tx.query("..."); });
 * await db.close();
 */
export class PostgresConnection implements PgQueryable {
  /** The schema name (valid unquoted, see `PostgresOptions.schema`). */
  readonly schema: string;
  readonly #pool: Pool;
  #closed = false;

  constructor(pool: Pool, schema: string) {
    this.#pool = pool;
    this.schema = schema;
  }

  /** The schema-qualified name of a table, e.g. `"tributary".files`. */
  table(name: string): string {
    return `"${this.schema}".${name}`;
  }

  async query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<PgResult<R>> {
    const result = await this.#pool.query<R>(sql, params as unknown[]);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }

  /**
   * Runs `fn` in one READ COMMITTED transaction and commits it; rolls back when `fn` throws.
   * A serialization failure or deadlock (40001, 40P01) runs it again, up to 5 times, so `fn` must
   * only touch the database. A lost connection is not retried: the transaction may or may not
   * have committed, which only the caller's own check (e.g. a stream position) can tell.
   */
  async transaction<T>(fn: (tx: PgTransaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(fn);
      } catch (e) {
        if (attempt >= MAX_ATTEMPTS || !RETRYABLE.has(sqlState(e) ?? "")) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  /** Ends every connection; later calls do nothing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  async #once<T>(fn: (tx: PgTransaction) => Promise<T>): Promise<T> {
    const client: PoolClient = await this.#pool.connect();
    // A checked-out client has no pool listener: without ours, its socket error would crash the process.
    let broken: unknown;
    const onError = (e: Error): void => {
      broken = e;
    };
    client.on("error", onError);
    const tx: PgTransaction = {
      query: async <R extends QueryResultRow>(sql: string, params: readonly unknown[] = []) => {
        const result = await client.query<R>(sql, params as unknown[]);
        return { rows: result.rows, rowCount: result.rowCount ?? 0 };
      },
      lock: async (name) => {
        await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [
          lockKey(this.schema, name),
        ]);
      },
    };
    try {
      await client.query("BEGIN");
      const result = await fn(tx);
      await client.query("COMMIT");
      return result;
    } catch (e) {
      if (broken === undefined) {
        // The original error is the one to report; a failed ROLLBACK means the connection is gone.
        await client.query("ROLLBACK").catch((rollback: unknown) => {
          broken = rollback;
        });
      }
      throw e;
    } finally {
      client.off("error", onError);
      // A client whose connection failed is destroyed rather than handed to the next caller.
      client.release(broken === undefined ? undefined : true);
    }
  }
}

/**
 * Connects to PostgreSQL and creates the schema if missing. Loads `pg` here, so a process that
 * never opens a distributed backend never loads it.
 */
export async function connectPostgres(options: PostgresOptions): Promise<PostgresConnection> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  if (!SCHEMA_NAME.test(schema)) {
    throw new TributaryError(
      "TRB_CONFIG_INVALID",
      `PostgreSQL schema ${JSON.stringify(schema)} must be lowercase letters, digits and _ (at most 63)`,
    );
  }
  const pg = await import("pg");
  // BIGINT columns hold positions, byte and row counts: read them as numbers, as SQLite returns
  // them, for this pool only (a global parser would change every other pg user in the process).
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, Number);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    types,
  });
  // An idle client whose connection dies is dropped by the pool and replaced on the next
  // checkout; an outage then fails that query. Without a listener the error would end the process.
  pool.on("error", () => {});
  const db = new PostgresConnection(pool, schema);
  try {
    // Two processes creating the same schema at once would fail one on a unique index.
    await db.transaction(async (tx) => {
      await tx.lock("schema");
      await tx.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    });
  } catch (e) {
    await db.close();
    throw e;
  }
  return db;
}

/** The SQLSTATE of a PostgreSQL error, if `e` is one. */
export function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A 64-bit advisory lock key for a name within a schema (a collision only makes two wait). */
function lockKey(schema: string, name: string): string {
  return createHash("sha256")
    .update(`tributary:${schema}:${name}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}
