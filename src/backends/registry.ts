// Names the concrete backends: the only module besides runtime/ that knows which exist.
import { join } from "node:path";
import type { CatalogStore, ObjectStore, Stream } from "./contracts/index.js";
import { LocalObjectStore } from "./local/object-store.js";
import { SqliteCatalog } from "./sqlite/catalog-store.js";
import { SqliteStream } from "./sqlite/stream-log.js";

/** The backends a process runs with. */
export interface Backends {
  readonly stream: Stream;
  readonly catalog: CatalogStore;
  readonly lake: ObjectStore;
}

/** Opens the embedded backends: SQLite stream log and catalog under `dataDir`, the lake as a folder. */
export function openEmbeddedBackends(dataDir: string, lakeDir: string): Backends {
  return {
    stream: new SqliteStream(join(dataDir, "stream.db")),
    catalog: new SqliteCatalog(join(dataDir, "catalog.db")),
    lake: new LocalObjectStore(lakeDir),
  };
}

/** Opens the embedded lake (a folder) for readers such as `tributary query`. */
export function openEmbeddedLake(lakeDir: string): ObjectStore {
  return new LocalObjectStore(lakeDir);
}

/** Opens the embedded catalog for writing, for CLI commands that commit (batch runs). */
export function openEmbeddedCatalog(dataDir: string): CatalogStore {
  return new SqliteCatalog(join(dataDir, "catalog.db"));
}

/** Opens the embedded catalog read-only, for the CLI beside a running server. */
export function openEmbeddedCatalogReadonly(dataDir: string): CatalogStore {
  return new SqliteCatalog(join(dataDir, "catalog.db"), { readonly: true });
}
