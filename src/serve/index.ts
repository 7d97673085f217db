// Public door of the serve stage: sandboxed read-only SQL over the catalog.
export { QueryEngine } from "./query-engine.js";
export type { QueryEngineOptions, QueryResult } from "./query-engine.js";
export { guardSql } from "./sql-guard.js";
export { registerServeRoutes } from "./routes.js";
export { walkSqlTree } from "./sql-tree.js";
