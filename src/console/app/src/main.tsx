// Entry point of the web console: starts the first page's data and the chart code loading, then mounts the app.
import { render } from "preact";
import { prefetch, storedKey } from "./api.js";
import { App } from "./app.js";
import { loadCharts } from "./chart.js";
import { prefetchDashboard } from "./dashboards.js";

// With a stored key, what the first page needs loads beside the session check rather than after
// it: the ECharts chunk and the page's first answers (the overview, or a dashboard and its charts).
if (storedKey() !== null) {
  prefetch("/v1/console/session");
  const hash = window.location.hash;
  if (hash === "" || hash === "#" || hash === "#/") prefetch("/v1/console/overview");
  else if (hash.startsWith("#/dashboards/"))
    prefetchDashboard(decodeURIComponent(hash.slice("#/dashboards/".length).split("?")[0]!));
  loadCharts().catch(() => undefined);
}

const root = document.getElementById("app");
if (root !== null) render(<App />, root);
