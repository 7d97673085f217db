// Public door of the console stage: the web console's routes, overview sampler and dashboards.
export { registerConsoleRoutes, findConsoleAssets } from "./routes.js";
export type { ConsoleDeps } from "./routes.js";
export { OverviewSampler, SAMPLE_INTERVAL_MS } from "./overview.js";
export type { Overview, OverviewSources, SpeedShardStatus } from "./overview.js";
export { Dashboards } from "./dashboards.js";
export type { ChartRows, DashboardSources, ViewReader } from "./dashboards.js";
export { RecentLog } from "./recent-log.js";
export type { RecentEntry } from "./recent-log.js";
