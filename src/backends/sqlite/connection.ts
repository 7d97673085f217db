// Opens SQLite databases for the embedded backends: WAL, full fsync on commit, one writer.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/** A better-sqlite3 database handle. */
export type SqliteDatabase = Database.Database;

/** Options of `openSqlite`. */
export interface SqliteOptions {
  readonly readonly?: boolean;
  /**
   * Page size of a new database file (SQLite's default is 4096; an existing file keeps its own).
   * The stream log stores rows of tens of KiB: with 32 KiB pages a commit writes a fraction of the
   * WAL frames and system calls, which halves the writer's CPU per row (measured, BENCHMARKS.md).
   */
  readonly pageSize?: number;
}

/**
 * Opens a database file with the durability the contracts need: WAL journal and
 * `synchronous = FULL`, so a committed transaction survives power loss (the WAL is fsync'd on commit).
 */
export function openSqlite(path: string, options: SqliteOptions = {}): SqliteDatabase {
  if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { readonly: options.readonly ?? false });
  if (!options.readonly) {
    // Only takes effect before the first table exists (and before WAL mode is set).
    if (options.pageSize !== undefined) db.pragma(`page_size = ${options.pageSize}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
  }
  db.pragma("busy_timeout = 5000");
  return db;
}
