// Public door of the serve stage: sandboxed read-only SQL over the catalog.
export { QueryEngine } from "./query-engine.js";
export type { QueryEngineOptions, QueryResult } from "./query-engine.js";
export { guardSql } from "./sql-guard.js";
export { registerServeRoutes, registerViewRoutes } from "./routes.js";
export { queryView } from "./view-query.js";
export type { ViewAnswer, ViewQuery, ViewSources } from "./view-query.js";
export { walkSqlTree } from "./sql-tree.js";
