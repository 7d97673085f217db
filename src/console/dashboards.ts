// Dashboards declared in tributary.yaml: their definitions for the console, and each chart's rows.
import { parseDuration, type ChartConfig, type DashboardConfig } from "../config/index.js";
import { TributaryError } from "../errors.js";
import { quoteString } from "../lake/index.js";
import { GRAIN_MS, type Grain, type ViewNode } from "../views/index.js";

/** Rows of a chart, as `POST /v1/query` answers them. */
export interface ChartRows {
  readonly columns: { name: string; type: string }[];
  readonly rows: unknown[][];
  /** View charts: start of the first bucket served by the speed layer (the cut), if any. */
  readonly batch_until: string | null;
  /** Why there are no rows, when the chart's table does not exist yet. */
  readonly notice?: string;
}

/** A view query as the dashboards need it (the serve stage's `queryView`, bound to its sources). */
export type ViewReader = (
  view: string,
  q: {
    from: number;
    to: number;
    grain: Grain;
    where: ReadonlyMap<string, string>;
    dimensions: readonly string[];
  },
) => Promise<{
  columns: { name: string; type: string }[];
  rows: unknown[][];
  batch_until: string | null;
}>;

/** What dashboards read. `canRead` authorizes each dataset a query touches for the asking key. */
export interface DashboardSources {
  readonly dashboards: ReadonlyMap<string, DashboardConfig>;
  readonly views: ReadonlyMap<string, ViewNode>;
  readonly query: (
    sql: string,
    canRead: (dataset: string) => void,
  ) => Promise<{ columns: { name: string; type: string }[]; rows: unknown[][] }>;
  readonly readView: ViewReader;
  /** Newest event time (epoch ms) of the data the dashboard shows; undefined when none yet. */
  readonly latest: (views: readonly string[]) => Promise<number | undefined>;
}

/** Placeholders a chart's SQL may hold. */
const PLACEHOLDER = /\{\{\s*(from|to|filter:([a-z][a-z0-9_]*))\s*\}\}/g;
/** Filter value lists are kept this long (they list dimension values, which change slowly). */
const VALUES_TTL_MS = 60_000;
const MAX_FILTER_VALUES = 1_000;

/** Serves the dashboards of a pipeline. */
export class Dashboards {
  readonly #s: DashboardSources;
  readonly #values = new Map<
    string,
    { at: number; values: Promise<string[]>; datasets: ReadonlySet<string> }
  >();

  constructor(sources: DashboardSources) {
    this.#s = sources;
  }

  /** Names and titles, for the console's menu. */
  list(): { name: string; title: string }[] {
    return [...this.#s.dashboards].map(([name, d]) => ({ name, title: d.title ?? name }));
  }

  /** Every dashboard with its filters' values and charts, as `GET /v1/dashboards` answers. */
  async describe(canRead: (dataset: string) => void): Promise<unknown[]> {
    return Promise.all(
      [...this.#s.dashboards].map(async ([name, d]) => {
        const views = Object.values(d.charts).flatMap((c) => (c.view ? [c.view] : []));
        // The range ends after the newest event's minute, so [end - range, end) includes it.
        const newest = (await this.#s.latest(views)) ?? Date.now();
        const latest = (Math.floor(newest / 60_000) + 1) * 60_000;
        return {
          name,
          title: d.title ?? name,
          description: d.description ?? null,
          range_ms: parseDuration(d.range),
          latest: new Date(latest).toISOString(),
          filters: await Promise.all(
            Object.entries(d.filters).map(async ([f, spec]) => ({
              name: f,
              label: spec.label ?? f,
              values: await this.#filterValues(name, f, spec.values, canRead),
            })),
          ),
          charts: Object.entries(d.charts).map(([id, c]) => this.#chartJson(id, c)),
        };
      }),
    );
  }

  /** The rows of one chart over [from, to) with the chosen filter values. */
  async chart(
    dashboard: string,
    id: string,
    q: { from: number; to: number; filters: ReadonlyMap<string, string> },
    canRead: (dataset: string) => void,
  ): Promise<ChartRows> {
    const d = this.#s.dashboards.get(dashboard);
    if (!d)
      throw new TributaryError(
        "TRB_HTTP_NOT_FOUND",
        `No dashboard ${dashboard}; dashboards: ${[...this.#s.dashboards.keys()].join(", ") || "none declared"}.`,
      );
    const c = d.charts[id];
    if (!c)
      throw new TributaryError(
        "TRB_HTTP_NOT_FOUND",
        `Dashboard ${dashboard} has no chart ${id}; charts: ${Object.keys(d.charts).join(", ")}.`,
      );
    for (const f of q.filters.keys())
      if (!(f in d.filters))
        throw new TributaryError(
          "TRB_HTTP_BAD_REQUEST",
          `\`${f}\` is not a filter of dashboard ${dashboard} (${Object.keys(d.filters).join(", ") || "none"}).`,
        );
    const columnOf = (f: string): string => d.filters[f]!.column ?? f;
    if (c.view !== undefined) {
      const node = this.#s.views.get(c.view)!;
      canRead(`view.${c.view}`);
      const dims = node.dimensions.map((x) => x.name);
      const where = new Map<string, string>();
      for (const [f, v] of q.filters) if (dims.includes(columnOf(f))) where.set(columnOf(f), v);
      const answer = await this.#s.readView(c.view, {
        from: q.from,
        to: q.to,
        grain: c.grain ?? grainFor(q.to - q.from, node.grain),
        where,
        dimensions: c.by === undefined ? [] : [c.by],
      });
      const measures = c.measures ?? node.measures.map((m) => m.name);
      const keep = answer.columns.flatMap((col, i) =>
        i === 0 || col.name === c.by || measures.includes(col.name) ? [i] : [],
      );
      return {
        columns: keep.map((i) => answer.columns[i]!),
        rows: answer.rows.map((r) => keep.map((i) => r[i])),
        batch_until: answer.batch_until,
      };
    }
    const placed = new Set<string>();
    const sql = c.sql!.replace(PLACEHOLDER, (_all, what: string, filter: string | undefined) => {
      if (what === "from") return timestampLiteral(q.from);
      if (what === "to") return timestampLiteral(q.to);
      placed.add(filter!);
      const value = q.filters.get(filter!);
      return value === undefined ? "TRUE" : `${ident(columnOf(filter!))} = ${quoteString(value)}`;
    });
    let result: Awaited<ReturnType<DashboardSources["query"]>>;
    try {
      result = await this.#s.query(sql, canRead);
    } catch (e) {
      // A table the batch layer has not built yet is no data yet, not a broken dashboard.
      if (e instanceof TributaryError && e.code === "TRB_SERVE_SQL_UNKNOWN_TABLE")
        return { columns: [], rows: [], batch_until: null, notice: e.message };
      throw e;
    }
    let rows = result.rows;
    // Filters without a placeholder apply to the result rows that have their column.
    for (const [f, v] of q.filters) {
      if (placed.has(f)) continue;
      const i = result.columns.findIndex((col) => col.name === columnOf(f));
      if (i >= 0) rows = rows.filter((r) => String(r[i]) === v);
    }
    return { columns: result.columns, rows, batch_until: null };
  }

  #chartJson(id: string, c: ChartConfig): unknown {
    const node = c.view === undefined ? undefined : this.#s.views.get(c.view);
    return {
      id,
      title: c.title,
      type: c.type,
      source: node ? "view" : "sql",
      view: c.view ?? null,
      x: node ? "bucket" : (c.x ?? null),
      y: node ? (c.measures ?? node.measures.map((m) => m.name)) : (c.y ?? []),
      series: node ? (c.by ?? null) : (c.series ?? null),
      refresh_ms: c.refresh === undefined ? null : parseDuration(c.refresh),
      sql: c.sql ?? null,
    };
  }

  #filterValues(
    dashboard: string,
    filter: string,
    sql: string,
    canRead: (dataset: string) => void,
  ): Promise<string[]> {
    const key = `${dashboard}.${filter}`;
    const held = this.#values.get(key);
    // Cached values were read with some key: the asking key must be allowed the datasets that
    // query read, which the first run recorded.
    if (held && Date.now() - held.at < VALUES_TTL_MS)
      return held.values.then((v) => {
        for (const d of held.datasets) canRead(d);
        return v;
      });
    const datasets = new Set<string>();
    const values = this.#s
      .query(sql, (d) => {
        canRead(d);
        datasets.add(d);
      })
      .then((r) =>
        r.rows
          .slice(0, MAX_FILTER_VALUES)
          .map((row) => row[0])
          .filter((v) => v !== null && v !== undefined)
          .map(String),
      );
    this.#values.set(key, { at: Date.now(), values, datasets });
    values.catch(() => this.#values.delete(key));
    return values;
  }
}

function timestampLiteral(ms: number): string {
  return `TIMESTAMP '${new Date(ms).toISOString().replace("T", " ").replace("Z", "")}'`;
}

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The grain of a view chart over `rangeMs` without one: minutes up to 2 days, then hours, days. */
function grainFor(rangeMs: number, finest: Grain): Grain {
  const wanted: Grain =
    rangeMs > 14 * 86_400_000 ? "day" : rangeMs > 2 * 86_400_000 ? "hour" : "minute";
  return GRAIN_MS[wanted] >= GRAIN_MS[finest] ? wanted : finest;
}
