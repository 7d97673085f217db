// The views pages: each lambda view's chosen measure over the last hours, live, with the batch/speed cut marked.
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, isAbort, sleep, withQuery } from "./api.js";
import { EChart } from "./chart.js";
import { viewOption } from "./chart-options.js";
import { fmtNumber, fmtTime, isIntegerType, isNumericType, toMs, toNumber } from "./format.js";
import { useLiveOverview } from "./live.js";
import type { LiveOverview } from "./live.js";
import { href } from "./router.js";
import type { Column, ViewAnswer } from "./types.js";
import { Crumb, ErrorBox, Page, Section, useSession } from "./ui.js";

const RANGES: [label: string, hours: number][] = [
  ["1 h", 1],
  ["6 h", 6],
  ["24 h", 24],
];
const REFRESH_MS = 2000;
/** The option value meaning "every value of this dimension, summed". */
const ALL = "__all__";

/** The columns of a view answer: bucket first, then dimensions, then measures (`layer` is neither). */
function classify(columns: Column[]): { dims: Column[]; measures: Column[] } {
  const rest = columns.slice(1).filter((c) => c.name !== "layer");
  return {
    dims: rest.filter((c) => !isNumericType(c.type)),
    measures: rest.filter((c) => isNumericType(c.type)),
  };
}

/** The newest event time of a view, from the live overview (the end of its chart). */
function newestOf(live: LiveOverview, view: string): number | null {
  const o = live.overview;
  if (o === null) return null;
  const speed = (o.speed ?? []).find((s) => s.view === view);
  const batch = (o.batch ?? []).find((b) => b.view === view);
  return toMs(speed?.newest_event_time ?? null) ?? toMs(batch?.batch_until ?? null);
}

interface Fetched {
  answer: ViewAnswer;
  from: number;
  to: number;
}

function ViewChart(props: {
  view: string;
  end: number | null;
  endKnown: boolean;
  onSettled: (view: string) => void;
}) {
  const { view } = props;
  const [hours, setHours] = useState(6);
  const [measure, setMeasure] = useState<string | null>(null);
  // null until the first answer shows the dimensions and their values.
  const [filters, setFilters] = useState<Record<string, string> | null>(null);
  const [values, setValues] = useState<Record<string, string[]>>({});
  const [fetched, setFetched] = useState<Fetched | null>(null);
  const [updates, setUpdates] = useState(0);
  const [error, setError] = useState<unknown>(null);

  const end = useRef(props.end);
  end.current = props.end;
  const filterRef = useRef(filters);
  filterRef.current = filters;
  const settled = useRef(props.onSettled);
  settled.current = props.onSettled;
  const filterKey = JSON.stringify(filters);

  /** Records the dimension values an answer shows; the first answer also picks the defaults. */
  const learn = (answer: ViewAnswer): void => {
    const { dims, measures } = classify(answer.columns ?? []);
    const first = measures[0];
    const seen: Record<string, Map<string, number>> = {};
    for (const d of dims) {
      const i = answer.columns.indexOf(d);
      const totals = new Map<string, number>();
      for (const row of answer.rows ?? []) {
        const value = String(row[i] ?? "");
        const weight =
          first === undefined ? 1 : (toNumber(row[answer.columns.indexOf(first)]) ?? 0);
        totals.set(value, (totals.get(value) ?? 0) + weight);
      }
      seen[d.name] = totals;
    }
    setValues((prev) => {
      const next: Record<string, string[]> = { ...prev };
      for (const [dim, totals] of Object.entries(seen)) {
        next[dim] = [...new Set([...(prev[dim] ?? []), ...totals.keys()])].sort();
      }
      return next;
    });
    if (filterRef.current === null) {
      // Default: each dimension's busiest value, so the chart shows one real series.
      const defaults: Record<string, string> = {};
      for (const [dim, totals] of Object.entries(seen)) {
        const top = [...totals.entries()].sort((a, b) => b[1] - a[1])[0];
        defaults[dim] = top === undefined ? ALL : top[0];
      }
      filterRef.current = defaults;
      setFilters(defaults);
    }
  };

  useEffect(() => {
    if (!props.endKnown) return;
    const abort = new AbortController();
    const loop = async (): Promise<void> => {
      for (;;) {
        // A minute past the newest event, so its (partial) bucket is in the range.
        const to = (end.current ?? Date.now()) + 60_000;
        const from = to - hours * 3_600_000;
        const params: Record<string, string> = {
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
        };
        for (const [dim, value] of Object.entries(filterRef.current ?? {}))
          if (value !== ALL) params[dim] = value;
        // The first call learns the dimensions and their values at the coarsest grain (few rows);
        // choosing the default filters then restarts this loop with them.
        const discovering = filterRef.current === null;
        if (discovering) params.grain = "day";
        try {
          const answer = await api<ViewAnswer>(
            withQuery(`/v1/views/${encodeURIComponent(view)}`, params),
            {
              signal: abort.signal,
            },
          );
          learn(answer);
          if (discovering) return;
          setFetched({ answer, from, to });
          setUpdates((n) => n + 1);
          setError(null);
        } catch (err) {
          if (isAbort(err)) return;
          setError(err);
        }
        settled.current(view);
        await sleep(REFRESH_MS, abort.signal);
      }
    };
    loop().catch(() => undefined);
    return () => abort.abort();
  }, [view, props.endKnown, hours, filterKey]);

  const columns = fetched?.answer.columns ?? [];
  const { dims, measures } = classify(columns);
  const summing = dims.some((d) => (filters?.[d.name] ?? ALL) === ALL);
  // Summing across dimension values is right for counts and sums only (integer measures).
  const choices = summing ? measures.filter((m) => isIntegerType(m.type)) : measures;
  const chosen = choices.find((m) => m.name === measure) ?? choices[0] ?? null;

  const points = useMemo(() => {
    if (fetched === null || chosen === null) return [];
    const { answer } = fetched;
    const mi = answer.columns.findIndex((c) => c.name === chosen.name);
    const dimIndex = dims.map((d) => ({
      name: d.name,
      index: answer.columns.findIndex((c) => c.name === d.name),
    }));
    const sums = new Map<number, number | null>();
    for (const row of answer.rows ?? []) {
      // The filter applies client-side too: an answer may predate a new choice.
      if (
        dimIndex.some(
          (d) =>
            (filters?.[d.name] ?? ALL) !== ALL && String(row[d.index] ?? "") !== filters?.[d.name],
        )
      ) {
        continue;
      }
      const t = toMs(row[0] ?? null);
      if (t === null) continue;
      const v = toNumber(row[mi]);
      const prev = sums.get(t);
      sums.set(t, prev === undefined || prev === null ? v : v === null ? prev : prev + v);
    }
    return [...sums.entries()].sort((a, b) => a[0] - b[0]);
  }, [fetched, chosen?.name, filterKey]);

  const option = useMemo(
    () =>
      fetched === null
        ? null
        : viewOption({
            points,
            measure: chosen?.name ?? "",
            from: fetched.from,
            to: fetched.to,
            cut: fetched.answer.batch_until,
          }),
    [points, fetched],
  );

  const id = (part: string): string => `view-${view}-${part}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const latest = points[points.length - 1];
  return (
    <Section
      title={<a href={href("views", view)}>{view}</a>}
      id={id("section")}
      actions={
        <div class="row controls">
          <label for={id("measure")}>Measure</label>
          <select
            id={id("measure")}
            aria-label="Measure"
            value={chosen?.name ?? ""}
            onChange={(e) => setMeasure(e.currentTarget.value)}
          >
            {choices.length === 0 && <option value="">—</option>}
            {choices.map((m) => (
              <option key={m.name} value={m.name}>
                {m.name}
              </option>
            ))}
          </select>
          {dims.map((d) => (
            <span key={d.name} class="row">
              <label for={id(`dim-${d.name}`)}>{d.name}</label>
              <select
                id={id(`dim-${d.name}`)}
                aria-label={d.name}
                value={filters?.[d.name] ?? ALL}
                onChange={(e) => {
                  const next = { ...(filters ?? {}), [d.name]: e.currentTarget.value };
                  filterRef.current = next;
                  setFilters(next);
                }}
              >
                <option value={ALL}>all (count measures only)</option>
                {(values[d.name] ?? []).map((v) => (
                  <option key={v} value={v}>
                    {v}
                  </option>
                ))}
              </select>
            </span>
          ))}
          <label for={id("range")}>Range</label>
          <select
            id={id("range")}
            aria-label="Range"
            value={String(hours)}
            onChange={(e) => setHours(Number(e.currentTarget.value))}
          >
            {RANGES.map(([label, h]) => (
              <option key={h} value={String(h)}>
                {label}
              </option>
            ))}
          </select>
        </div>
      }
    >
      <ErrorBox error={error} />
      <figure
        class="chart"
        data-chart={`view-${view}`}
        data-points={String(points.length)}
        data-updates={String(updates)}
      >
        <figcaption>
          {chosen?.name ?? "—"} per {fetched?.answer.grain ?? "bucket"}
          {dims.length > 0 &&
            ` · ${dims.map((d) => `${d.name} ${(filters?.[d.name] ?? ALL) === ALL ? "all" : filters?.[d.name]}`).join(", ")}`}
          {latest !== undefined && ` · latest ${fmtNumber(latest[1])} at ${fmtTime(latest[0])}`}
        </figcaption>
        {option !== null ? (
          <EChart
            option={option}
            height={260}
            label={`${chosen?.name ?? "measure"} of view ${view} over time`}
          />
        ) : (
          error === null && <p class="muted">Loading…</p>
        )}
        {fetched !== null && (
          <p class="muted small">
            Batch layer until{" "}
            {fetched.answer.batch_until === null
              ? "— (nothing built yet)"
              : fmtTime(fetched.answer.batch_until)}
            ; the speed layer serves the shaded part after it. Range {fmtTime(fetched.from)} →{" "}
            {fmtTime(fetched.to)} UTC.
          </p>
        )}
      </figure>
    </Section>
  );
}

/** `#/views` (every view) and `#/views/<view>` (one view). */
export function ViewsPage(props: { view: string | null }) {
  const session = useSession();
  const live = useLiveOverview();
  const views = props.view === null ? (session.pipeline.views ?? []) : [props.view];
  const [settled, setSettled] = useState<Set<string>>(new Set());
  const onSettled = useCallback((view: string) => {
    setSettled((prev) => (prev.has(view) ? prev : new Set([...prev, view])));
  }, []);
  const endKnown = live.overview !== null || live.error !== null;

  return (
    <Page
      name="views"
      title={props.view === null ? "Views" : <Crumb page="views" label="Views" name={props.view} />}
      ready={views.every((v) => settled.has(v))}
    >
      {views.length === 0 ? (
        <p class="muted">This pipeline declares no views.</p>
      ) : (
        views.map((v) => (
          <ViewChart
            key={v}
            view={v}
            end={newestOf(live, v)}
            endKnown={endKnown}
            onSettled={onSettled}
          />
        ))
      )}
    </Page>
  );
}
