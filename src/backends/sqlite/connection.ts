// Opens SQLite databases for the embedded backends: WAL, full fsync on commit, one writer.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/** A better-sqlite3 database handle. */
export type SqliteDatabase = Database.Database;

/**
 * Opens a database file with the durability the contracts need: WAL journal and
 * `synchronous = FULL`, so a committed transaction survives power loss (the WAL is fsync'd on commit).
 */
export function openSqlite(path: string, options: { readonly?: boolean } = {}): SqliteDatabase {
  if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { readonly: options.readonly ?? false });
  if (!options.readonly) {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
  }
  db.pragma("busy_timeout = 5000");
  return db;
}
