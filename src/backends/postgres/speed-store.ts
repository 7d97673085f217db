// The distributed SpeedStore on PostgreSQL: one row per (view, shard), compare-and-set saves, a version row per view.
import { TributaryError } from "../../errors.js";
import type {
  ShardCheckpoint,
  SpeedStore,
  SpeedStoreCapabilities,
  StoredShardCheckpoint,
} from "../contracts/index.js";
import {
  connectPostgres,
  type PgQueryable,
  type PostgresConnection,
  type PostgresOptions,
} from "./connection.js";
import { checkName, checkSave } from "../contracts/speed-store-checks.js";

/** The advisory lock the DDL at open holds, so processes opening a new schema together do not race. */
const DDL_LOCK = "speed-store";

interface ShardRow {
  shard: string;
  view_hash: string;
  position: number;
  max_time: number | null;
  late: number;
  state: Buffer;
  saved_at: Date;
}

/**
 * SpeedStore on PostgreSQL. Tables (in the connection's schema): `speed_shard_checkpoints`, one row
 * per (view, shard), and `speed_store_versions`, one counter per view. Not the catalog's
 * `speed_checkpoints` (one row per view), which may live in the same schema.
 *
 * A save is one transaction: `UPDATE … WHERE position = $expected` (or, for `expected` null,
 * `INSERT … ON CONFLICT DO NOTHING`), then, if a row was written, the view's counter moves. A
 * concurrent save of the same shard waits on the row lock and then finds the new position, so it
 * writes nothing; no row written means a conflict, unless the stored row already is the given
 * checkpoint (a resent save). Durable when it resolves: committed.
 * @example
 * const store = await PostgresSpeedStore.open({ url: "postgres://postgres@127.0.0.1:5432/test" });
 */
export class PostgresSpeedStore implements SpeedStore {
  readonly capabilities: SpeedStoreCapabilities = { shared: true };
  readonly #db: PostgresConnection;
  readonly #shards: string;
  readonly #versions: string;

  private constructor(db: PostgresConnection) {
    this.#db = db;
    this.#shards = db.table("speed_shard_checkpoints");
    this.#versions = db.table("speed_store_versions");
  }

  /** Connects and creates the schema and the two tables if missing. */
  static async open(options: PostgresOptions): Promise<PostgresSpeedStore> {
    const db = await connectPostgres(options);
    const store = new PostgresSpeedStore(db);
    try {
      await db.transaction(async (tx) => {
        await tx.lock(DDL_LOCK);
        // COLLATE "C": names compare and sort by byte, as in Redis and the catalog.
        await tx.query(`
          CREATE TABLE IF NOT EXISTS ${store.#shards} (
            view TEXT COLLATE "C" NOT NULL,
            shard TEXT COLLATE "C" NOT NULL,
            view_hash TEXT COLLATE "C" NOT NULL,
            position BIGINT NOT NULL,
            max_time BIGINT,
            late BIGINT NOT NULL,
            state BYTEA NOT NULL,
            saved_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (view, shard)
          );
          CREATE TABLE IF NOT EXISTS ${store.#versions} (
            view TEXT COLLATE "C" PRIMARY KEY,
            version BIGINT NOT NULL
          );`);
      });
    } catch (e) {
      await db.close();
      throw e;
    }
    return store;
  }

  async save(
    view: string,
    shard: string,
    expected: number | null,
    checkpoint: ShardCheckpoint,
  ): Promise<void> {
    checkSave(view, shard, expected, checkpoint);
    const c = checkpoint;
    const state = Buffer.from(c.state.buffer, c.state.byteOffset, c.state.byteLength);
    const values = [view, shard, c.viewHash, c.position, c.maxTime, c.late, state];
    await this.#db.transaction(async (tx) => {
      // A save identical to the stored row writes nothing (the version stays); it is told apart
      // from a conflict below.
      const written =
        expected === null
          ? await tx.query(
              `INSERT INTO ${this.#shards}
                 (view, shard, view_hash, position, max_time, late, state, saved_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (view, shard) DO NOTHING`,
              [...values, new Date().toISOString()],
            )
          : await tx.query(
              `UPDATE ${this.#shards}
               SET view_hash = $3, position = $4, max_time = $5, late = $6, state = $7, saved_at = $8
               WHERE view = $1 AND shard = $2 AND position = $9
                 AND (view_hash, position, max_time, late, state)
                     IS DISTINCT FROM ($3::text, $4::bigint, $5::bigint, $6::bigint, $7::bytea)`,
              [...values, new Date().toISOString(), expected],
            );
      if (written.rowCount === 1) {
        await this.#bump(tx, view);
        return;
      }
      const found = await tx.query<{ position: number; same: boolean }>(
        `SELECT position,
           (view_hash, position, max_time, late, state)
             IS NOT DISTINCT FROM ($3::text, $4::bigint, $5::bigint, $6::bigint, $7::bytea) AS same
         FROM ${this.#shards} WHERE view = $1 AND shard = $2`,
        values,
      );
      const stored = found.rows[0];
      if (stored?.same === true) return;
      throw new TributaryError(
        "TRB_CATALOG_CONFLICT",
        `speed checkpoint of ${view}/${shard} is at ${stored?.position ?? "none"}, not ${expected ?? "none"}: another worker saved it; reload it with loadShard`,
      );
    });
  }

  async load(view: string): Promise<StoredShardCheckpoint[]> {
    checkName("view", view);
    const { rows } = await this.#db.query<ShardRow>(
      `SELECT shard, view_hash, position, max_time, late, state, saved_at
       FROM ${this.#shards} WHERE view = $1`,
      [view],
    );
    // Sorted here, in JavaScript string order, like every other SpeedStore.
    return rows
      .map(toCheckpoint)
      .sort((a, b) => (a.shard < b.shard ? -1 : a.shard > b.shard ? 1 : 0));
  }

  async loadShard(view: string, shard: string): Promise<StoredShardCheckpoint | undefined> {
    checkName("view", view);
    checkName("shard", shard);
    const { rows } = await this.#db.query<ShardRow>(
      `SELECT shard, view_hash, position, max_time, late, state, saved_at
       FROM ${this.#shards} WHERE view = $1 AND shard = $2`,
      [view, shard],
    );
    return rows[0] && toCheckpoint(rows[0]);
  }

  async remove(view: string, shard?: string): Promise<void> {
    checkName("view", view);
    if (shard !== undefined) checkName("shard", shard);
    await this.#db.transaction(async (tx) => {
      const removed =
        shard === undefined
          ? await tx.query(`DELETE FROM ${this.#shards} WHERE view = $1`, [view])
          : await tx.query(`DELETE FROM ${this.#shards} WHERE view = $1 AND shard = $2`, [
              view,
              shard,
            ]);
      if (removed.rowCount > 0) await this.#bump(tx, view);
    });
  }

  async version(view: string): Promise<number> {
    checkName("view", view);
    const { rows } = await this.#db.query<{ version: number }>(
      `SELECT version FROM ${this.#versions} WHERE view = $1`,
      [view],
    );
    return rows[0]?.version ?? 0;
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  /**
   * Moves the view's counter in the caller's transaction. Its row is locked until commit, after
   * the shard rows, in that order in every writer, so concurrent saves never deadlock. The row is
   * kept when the view is removed, so the counter never goes back.
   */
  async #bump(tx: PgQueryable, view: string): Promise<void> {
    await tx.query(
      `INSERT INTO ${this.#versions} AS v (view, version) VALUES ($1, 1)
       ON CONFLICT (view) DO UPDATE SET version = v.version + 1`,
      [view],
    );
  }
}

function toCheckpoint(r: ShardRow): StoredShardCheckpoint {
  return {
    shard: r.shard,
    viewHash: r.view_hash,
    position: r.position,
    maxTime: r.max_time,
    late: r.late,
    state: Uint8Array.from(r.state),
    savedAt: r.saved_at.toISOString(),
  };
}
