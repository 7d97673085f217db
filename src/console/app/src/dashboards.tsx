// The dashboards pages: the list, and one dashboard's charts over a time range with its filters, refreshed live.
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, isAbort, peekPrefetched, prefetch, sleep, withQuery } from "./api.js";
import { EChart } from "./chart.js";
import { cartesianOption } from "./chart-options.js";
import { fmtDuration, fmtInt, fmtNumber, fmtRange, fmtTime, toMs, toNumber } from "./format.js";
import { href } from "./router.js";
import type { ChartData, Dashboard, DashboardChart } from "./types.js";
import { Crumb, ErrorBox, Loading, Page, ResultTable, TableHead, useAsync } from "./ui.js";

const HOUR = 3_600_000;
const PRESETS: [label: string, ms: number][] = [
  ["1 h", HOUR],
  ["6 h", 6 * HOUR],
  ["24 h", 24 * HOUR],
  ["7 d", 7 * 24 * HOUR],
];
const TABLE_ROWS = 100;

interface DashboardList {
  dashboards: Dashboard[];
}

/** `#/dashboards`: every dashboard the pipeline declares. */
export function DashboardsPage() {
  const list = useAsync((signal) => api<DashboardList>("/v1/dashboards", { signal }));
  const boards = list.data?.dashboards ?? [];
  return (
    <Page name="dashboards" title="Dashboards" ready={list.settled}>
      <ErrorBox error={list.error} />
      {list.data === undefined ? (
        list.error === null && <Loading what="the dashboards" />
      ) : boards.length === 0 ? (
        <p class="muted">This pipeline declares no dashboards.</p>
      ) : (
        <div class="table-wrap">
          <table class="data">
            <TableHead
              columns={["Dashboard", "Description", "#Charts", "Default range", "Latest data"]}
            />
            <tbody>
              {boards.map((b) => (
                <tr key={b.name}>
                  <td>
                    <a href={href("dashboards", b.name)}>{b.title || b.name}</a>
                  </td>
                  <td class="desc">{b.description ?? ""}</td>
                  <td class="num">{fmtInt((b.charts ?? []).length)}</td>
                  <td>{fmtRange(b.range_ms)}</td>
                  <td class="nowrap">{fmtTime(b.latest)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

/** The range and filters every chart of a dashboard reads. */
interface Scope {
  from: number;
  to: number;
  filters: Record<string, string>;
}

function ChartBody(props: { chart: DashboardChart; data: ChartData; onDrawn: () => void }) {
  const { chart, data } = props;
  const built = useMemo(
    () =>
      chart.type === "line" || chart.type === "bar" || chart.type === "area"
        ? cartesianOption({
            columns: data.columns ?? [],
            rows: data.rows ?? [],
            x: chart.x,
            y: chart.y ?? [],
            series: chart.series,
            kind: chart.type,
            cut: data.batch_until,
          })
        : null,
    [chart, data],
  );
  const drawnByDom = built === null;
  useEffect(() => {
    // Tables and numbers have rendered once this commit is done; ECharts reports its own drawing.
    if (drawnByDom) props.onDrawn();
  }, [data]);

  if (built !== null) {
    return (
      <EChart option={built.option} height={240} label={chart.title} onDrawn={props.onDrawn} />
    );
  }
  if (chart.type === "number") {
    const column = chart.y?.[0];
    const index = Math.max(
      0,
      (data.columns ?? []).findIndex((c) => c.name === column),
    );
    const value = data.rows?.[0]?.[index] ?? null;
    const n = toNumber(value);
    return (
      <p class="big-number">
        <span class="value">
          {n === null ? "—" : Number.isInteger(n) ? fmtInt(value) : fmtNumber(n)}
        </span>
        {column !== undefined && <span class="label">{column}</span>}
      </p>
    );
  }
  return (
    <ResultTable
      columns={data.columns ?? []}
      rows={(data.rows ?? []).slice(0, TABLE_ROWS)}
      caption={(data.rows ?? []).length > TABLE_ROWS ? `The first ${TABLE_ROWS} rows` : undefined}
    />
  );
}

/** How many points a chart shows: series points, table rows, or the one number. */
function pointsOf(chart: DashboardChart, data: ChartData): number {
  const rows = data.rows ?? [];
  if (chart.type === "table") return Math.min(rows.length, TABLE_ROWS);
  if (chart.type === "number") return rows.length > 0 ? 1 : 0;
  return cartesianOption({
    columns: data.columns ?? [],
    rows,
    x: chart.x,
    y: chart.y ?? [],
    series: chart.series,
    kind: chart.type,
  }).points;
}

function ChartCard(props: {
  board: string;
  chart: DashboardChart;
  scope: Scope;
  scopeRef: { current: Scope };
  onSettled: (id: string) => void;
}) {
  const { chart, board } = props;
  const [data, setData] = useState<ChartData | null>(null);
  const [updates, setUpdates] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const settle = useCallback(() => props.onSettled(chart.id), [chart.id, props.onSettled]);
  const key = JSON.stringify(props.scope);

  useEffect(() => {
    const abort = new AbortController();
    const load = async (): Promise<void> => {
      for (;;) {
        const scope = props.scopeRef.current;
        try {
          const answer = await api<ChartData>(chartPath(board, chart.id, scope), {
            signal: abort.signal,
          });
          setData(answer);
          setUpdates((n) => n + 1);
          setError(null);
        } catch (err) {
          if (isAbort(err)) return;
          setError(err);
          settle();
        }
        if (chart.refresh_ms === null || !(chart.refresh_ms > 0)) return;
        await sleep(Math.max(chart.refresh_ms, 500), abort.signal);
      }
    };
    load().catch(() => undefined);
    return () => abort.abort();
  }, [key, board, chart.id]);

  const points = useMemo(() => (data === null ? 0 : pointsOf(chart, data)), [chart, data]);
  return (
    <figure
      class={`chart card chart-${chart.type}`}
      data-chart={chart.id}
      data-points={String(points)}
      data-updates={String(updates)}
    >
      <figcaption
        title={
          chart.refresh_ms !== null && chart.refresh_ms > 0
            ? `Refreshed every ${fmtDuration(chart.refresh_ms)}`
            : undefined
        }
      >
        {chart.title}
      </figcaption>
      <ErrorBox error={error} />
      {data?.notice !== undefined && data.notice !== "" && <p class="muted small">{data.notice}</p>}
      {data !== null ? (
        <ChartBody chart={chart} data={data} onDrawn={settle} />
      ) : (
        error === null && <p class="muted">Loading…</p>
      )}
    </figure>
  );
}

/** `#/dashboards/<name>`: one dashboard's charts. */
export function DashboardPage(props: { name: string }) {
  const list = useAsync((signal) => api<DashboardList>("/v1/dashboards", { signal }));
  const board = list.data?.dashboards?.find((d) => d.name === props.name) ?? null;
  return (
    <>
      {board === null ? (
        <Page name="dashboard" title={props.name} ready={list.settled}>
          <ErrorBox error={list.error} />
          {list.data === undefined ? (
            list.error === null && <Loading what="the dashboard" />
          ) : (
            <div class="error" role="alert">
              <strong class="code">NOT_FOUND</strong> There is no dashboard {props.name}.{" "}
              <a href={href("dashboards")}>See every dashboard</a>.
            </div>
          )}
        </Page>
      ) : (
        <DashboardView board={board} />
      )}
    </>
  );
}

/** The request for a chart's rows over a scope (the page and the prefetch build it alike). */
function chartPath(board: string, chart: string, scope: Scope): string {
  return withQuery(
    `/v1/dashboards/${encodeURIComponent(board)}/charts/${encodeURIComponent(chart)}`,
    {
      from: new Date(scope.from).toISOString(),
      to: new Date(scope.to).toISOString(),
      ...scope.filters,
    },
  );
}

/** The range a dashboard opens with, in ms (its declared default, else a day). */
function defaultRange(board: Dashboard): number {
  return board.range_ms > 0 ? board.range_ms : 24 * HOUR;
}

/**
 * Starts loading a dashboard before the app has checked the session: its definition, then each
 * chart's rows over the default range (ending at `latest`, no filter), which the page then takes.
 */
export function prefetchDashboard(name: string): void {
  prefetch("/v1/dashboards");
  peekPrefetched<DashboardList>("/v1/dashboards")
    ?.then((list) => {
      const board = list.dashboards?.find((d) => d.name === name);
      const end = toMs(board?.latest ?? null);
      if (board === undefined || end === null) return;
      const scope: Scope = { from: end - defaultRange(board), to: end, filters: {} };
      for (const c of board.charts ?? []) prefetch(chartPath(board.name, c.id, scope));
    })
    .catch(() => undefined); // The page asks again and shows the error.
}

function DashboardView(props: { board: Dashboard }) {
  const { board } = props;
  const [rangeMs, setRangeMs] = useState(defaultRange(board));
  const [follow, setFollow] = useState(true);
  const [latest, setLatest] = useState<number | null>(() => toMs(board.latest));
  const [frozen, setFrozen] = useState<number | null>(null);
  const [filters, setFilters] = useState<Record<string, string>>({});
  const [settled, setSettled] = useState<Set<string>>(new Set());
  const marked = useRef(false);

  const charts = board.charts ?? [];
  const end = follow ? (latest ?? Date.now()) : (frozen ?? latest ?? Date.now());
  const scope: Scope = { from: end - rangeMs, to: end, filters };
  const scopeRef = useRef(scope);
  scopeRef.current = scope;
  // Charts restart on a new range or filter; a moving `latest` only reaches them at their refresh.
  const restartKey: Scope = useMemo(
    () => ({ from: follow ? -rangeMs : scope.from, to: follow ? 0 : scope.to, filters }),
    [follow, rangeMs, frozen, JSON.stringify(filters)],
  );

  // While following, re-read `latest` as often as the fastest chart refreshes.
  const fastest = Math.min(
    ...charts.map((c) => (c.refresh_ms !== null && c.refresh_ms > 0 ? c.refresh_ms : Infinity)),
  );
  useEffect(() => {
    if (!follow || !Number.isFinite(fastest)) return;
    const abort = new AbortController();
    const poll = async (): Promise<void> => {
      for (;;) {
        await sleep(Math.max(fastest, 1000), abort.signal);
        try {
          const answer = await api<DashboardList>("/v1/dashboards", { signal: abort.signal });
          const next = toMs(answer.dashboards?.find((d) => d.name === board.name)?.latest ?? null);
          if (next !== null) setLatest(next);
        } catch (error) {
          if (isAbort(error)) return;
        }
      }
    };
    poll().catch(() => undefined);
    return () => abort.abort();
  }, [follow, fastest, board.name]);

  const onSettled = useCallback((id: string) => {
    setSettled((prev) => (prev.has(id) ? prev : new Set([...prev, id])));
  }, []);
  const ready = charts.every((c) => settled.has(c.id));
  useEffect(() => {
    if (ready && !marked.current) {
      marked.current = true;
      performance.mark("dashboard-ready");
    }
  }, [ready]);

  const rangeOptions = PRESETS.some(([, ms]) => ms === board.range_ms)
    ? PRESETS
    : [
        ...PRESETS,
        [`${fmtRange(board.range_ms)} (default)`, board.range_ms] as [string, number],
      ].sort((a, b) => a[1] - b[1]);

  return (
    <Page
      name="dashboard"
      ready={ready}
      title={<Crumb page="dashboards" label="Dashboards" name={board.title || board.name} />}
    >
      {board.description !== null && board.description !== "" && (
        <p class="lead">{board.description}</p>
      )}
      <div class="toolbar row" role="group" aria-label="Dashboard controls">
        <label for="range">Time range</label>
        <select
          id="range"
          aria-label="Time range"
          value={String(rangeMs)}
          onChange={(e) => setRangeMs(Number(e.currentTarget.value))}
        >
          {rangeOptions
            .filter(([, ms]) => ms > 0)
            .map(([label, ms]) => (
              <option key={ms} value={String(ms)}>
                {ms === board.range_ms && !label.includes("default") ? `${label} (default)` : label}
              </option>
            ))}
        </select>
        <span class="check">
          <input
            id="follow"
            type="checkbox"
            checked={follow}
            onChange={(e) => {
              const on = e.currentTarget.checked;
              if (!on) setFrozen(latest);
              setFollow(on);
            }}
          />
          <label for="follow">Follow latest</label>
        </span>
        {(board.filters ?? []).map((f) => (
          <span key={f.name} class="row">
            <label for={`filter-${f.name}`}>{f.label || f.name}</label>
            <select
              id={`filter-${f.name}`}
              value={filters[f.name] ?? ""}
              onChange={(e) => {
                const value = e.currentTarget.value;
                const next = { ...filters };
                if (value === "") delete next[f.name];
                else next[f.name] = value;
                setFilters(next);
              }}
            >
              <option value="">All</option>
              {(f.values ?? []).map((v) => (
                <option key={v} value={v}>
                  {v}
                </option>
              ))}
            </select>
          </span>
        ))}
        <span class="muted small">
          {fmtTime(scope.from)} → {fmtTime(scope.to)} UTC
        </span>
      </div>
      {charts.length === 0 ? (
        <p class="muted">This dashboard has no charts.</p>
      ) : (
        <div class="chart-grid">
          {charts.map((c) => (
            <ChartCard
              key={c.id}
              board={board.name}
              chart={c}
              scope={restartKey}
              scopeRef={scopeRef}
              onSettled={onSettled}
            />
          ))}
        </div>
      )}
    </Page>
  );
}
