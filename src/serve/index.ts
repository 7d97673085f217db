// Public door of the serve stage: sandboxed read-only SQL over the catalog.
export { QueryEngine } from "./query-engine.js";
export type { QueryEngineOptions, QueryResult } from "./query-engine.js";
export { guardSql } from "./sql-guard.js";
export { parseInstant, registerServeRoutes, registerViewRoutes } from "./routes.js";
export { ViewStateCache, queryView } from "./view-query.js";
export { VIEW_SCHEMA, viewColumns } from "./sql-views.js";
export type { SqlView } from "./sql-views.js";
export type { ViewAnswer, ViewQuery, ViewSources } from "./view-query.js";
export { walkSqlTree } from "./sql-tree.js";
