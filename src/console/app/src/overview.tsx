// The overview page: streams with live ingest rates, consumers, view freshness, batch state, errors and storage.
import { useEffect, useMemo, useRef } from "preact/hooks";
import { EChart } from "./chart.js";
import { sparklineOption } from "./chart-options.js";
import { fmtBytes, fmtClock, fmtDuration, fmtInt, fmtNumber, fmtSpan, fmtTime } from "./format.js";
import { useLiveOverview } from "./live.js";
import type { LiveState } from "./live.js";
import { href } from "./router.js";
import type { Overview } from "./types.js";
import { ErrorBox, Loading, Page, Section, StatusBadge, TableHead } from "./ui.js";

/** A view whose speed layer has not advanced for longer than this is marked stale. */
const STALE_MS = 60_000;

/** "Live · updated 12:00:03", read out politely as it changes. */
function LiveIndicator(props: { state: LiveState; updatedAt: Date | null }) {
  const when = props.updatedAt === null ? "" : ` · updated ${fmtClock(props.updatedAt)}`;
  const text =
    props.state === "live"
      ? `Live${when}`
      : props.state === "reconnecting"
        ? `Reconnecting…${when}`
        : `Connecting…${when}`;
  return (
    <p class={`live live-${props.state}`} aria-live="polite">
      <span class="dot" aria-hidden="true" />
      {text}
    </p>
  );
}

function StreamCard(props: { stream: Overview["streams"][number]; samples: number[] }) {
  const { stream, samples } = props;
  const option = useMemo(() => sparklineOption(samples), [samples]);
  return (
    <article class="card stream-card">
      <h3>
        <a href={href("streams", stream.name)}>{stream.name}</a>
      </h3>
      <p class="metric">
        <span class="value">
          {stream.rate === null ? "—" : fmtNumber(Math.round(stream.rate * 10) / 10)}
        </span>{" "}
        <span class="unit">events/s</span>
      </p>
      <EChart
        option={option}
        height={44}
        className="sparkline"
        label={`Ingest rate of ${stream.name}, the last ${samples.length} samples`}
      />
      <dl class="facts compact">
        <div>
          <dt>End of log</dt>
          <dd>{fmtInt(stream.end)}</dd>
        </div>
        <div>
          <dt>Dead letters</dt>
          <dd>
            <a
              href={href("streams", stream.name)}
              class={stream.dead_letters > 0 ? "warn-text" : undefined}
            >
              {fmtInt(stream.dead_letters)} dead letter{stream.dead_letters === 1 ? "" : "s"}
            </a>
          </dd>
        </div>
      </dl>
    </article>
  );
}

function Consumers(props: { streams: Overview["streams"] }) {
  const rows = props.streams.flatMap((s) =>
    (s.consumers ?? []).map((c) => ({ stream: s.name, ...c })),
  );
  if (rows.length === 0) return <p class="muted">No consumers are reading the streams.</p>;
  return (
    <div class="table-wrap">
      <table class="data">
        <TableHead
          columns={["Stream", "Consumer", "#Partition", "#Position", "#Lag", "Freshness"]}
        />
        <tbody>
          {rows.map((c) => (
            <tr key={`${c.stream}/${c.name}/${c.partition}`}>
              <td>{c.stream}</td>
              <td>{c.name}</td>
              <td class="num">{String(c.partition)}</td>
              <td class="num">{fmtInt(c.position)}</td>
              <td class="num">{fmtInt(c.lag)}</td>
              <td>
                <Freshness ms={c.freshness_ms ?? null} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/**
 * How fresh a reader is: every event appended before "as of" is landed or applied (the server
 * measures it against sampled stream ends; null when further behind than its samples reach).
 */
function Freshness(props: { ms: number | null }) {
  if (props.ms === null) return <StatusBadge status="missing" label="unknown" />;
  const text = props.ms === 0 ? "caught up" : `as of ${fmtDuration(props.ms)} ago`;
  return (
    <>
      <StatusBadge status={props.ms > STALE_MS ? "stale" : "fresh"} /> <span>{text}</span>
    </>
  );
}

function SpeedTable(props: { speed: Overview["speed"] }) {
  if (props.speed.length === 0) return <p class="muted">No view runs in the speed layer.</p>;
  return (
    <div class="table-wrap">
      <table class="data">
        <TableHead
          columns={["View", "Stream", "Newest event", "Watermark", "Checkpoint", "Freshness"]}
        />
        <tbody>
          {props.speed.map((v) => (
            <tr key={`${v.view}/${v.stream}`}>
              <td>
                <a href={href("views", v.view)}>{v.view}</a>
              </td>
              <td>{v.stream}</td>
              <td>{fmtTime(v.newest_event_time)}</td>
              <td>{fmtTime(v.watermark)}</td>
              <td>{fmtTime(v.checkpoint_at)}</td>
              <td>
                <Freshness ms={v.freshness_ms} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function BatchState(props: { overview: Overview }) {
  const { batch, runs } = props.overview;
  const latest = runs?.latest ?? null;
  const running = runs?.running ?? null;
  return (
    <>
      <dl class="facts">
        <div>
          <dt>Latest run</dt>
          <dd>
            {latest === null ? (
              "none yet"
            ) : (
              <>
                <a href={href("batch")}>#{latest.id}</a> <StatusBadge status={latest.status} />{" "}
                {latest.trigger}, {fmtTime(latest.started_at)}
                {latest.finished_at !== null &&
                  `, ${fmtSpan(latest.started_at, latest.finished_at)}`}
              </>
            )}
          </dd>
        </div>
        <div>
          <dt>Partitions not fresh</dt>
          <dd>
            <a href={href("batch")} class={(runs?.not_fresh ?? 0) > 0 ? "warn-text" : undefined}>
              {fmtInt(runs?.not_fresh ?? 0)} not fresh
            </a>
          </dd>
        </div>
        {running !== null && (
          <div>
            <dt>Running</dt>
            <dd>
              run #{running.run_id}: {running.done} of {running.total} tasks
              {running.failed > 0 && `, ${running.failed} failed`}{" "}
              <progress
                value={running.done}
                max={Math.max(running.total, 1)}
                aria-label="Run progress"
              />
            </dd>
          </div>
        )}
      </dl>
      {(batch ?? []).length === 0 ? (
        <p class="muted">No view has a batch layer.</p>
      ) : (
        <div class="table-wrap">
          <table class="data">
            <TableHead columns={["View", "Batch until"]} />
            <tbody>
              {batch.map((b) => (
                <tr key={b.view}>
                  <td>
                    <a href={href("views", b.view)}>{b.view}</a>
                  </td>
                  <td>{b.batch_until === null ? "nothing built yet" : fmtTime(b.batch_until)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Errors(props: { errors: Overview["errors"] }) {
  if (props.errors.length === 0) return <p class="muted">No recent warnings or errors.</p>;
  return (
    <ol class="log">
      {props.errors.map((e, i) => (
        <li key={`${e.time}-${i}`}>
          <time dateTime={e.time}>{fmtTime(e.time)}</time> <StatusBadge status={e.level} />{" "}
          {e.code !== null && <code>{e.code}</code>} <span class="msg">{e.msg}</span>
        </li>
      ))}
    </ol>
  );
}

function Storage(props: { storage: Overview["storage"] }) {
  if (props.storage.length === 0) return <p class="muted">Nothing stored yet.</p>;
  const total = props.storage.reduce(
    (t, s) => ({
      files: t.files + (s.files ?? 0),
      rows: t.rows + (s.rows ?? 0),
      bytes: t.bytes + (s.bytes ?? 0),
    }),
    { files: 0, rows: 0, bytes: 0 },
  );
  return (
    <div class="table-wrap">
      <table class="data">
        <TableHead columns={["Dataset", "Layer", "Tier", "#Files", "#Rows", "#Size"]} />
        <tbody>
          {props.storage.map((s) => (
            <tr key={`${s.dataset}/${s.tier}`}>
              <td>
                <a href={href("catalog", s.dataset)}>{s.dataset}</a>
              </td>
              <td>{s.layer}</td>
              <td>{s.tier}</td>
              <td class="num">{fmtInt(s.files)}</td>
              <td class="num">{fmtInt(s.rows)}</td>
              <td class="num">{fmtBytes(s.bytes)}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colSpan={3}>
              Total
            </th>
            <td class="num">{fmtInt(total.files)}</td>
            <td class="num">{fmtInt(total.rows)}</td>
            <td class="num">{fmtBytes(total.bytes)}</td>
          </tr>
        </tfoot>
      </table>
    </div>
  );
}

/** `#/`: the pipeline at a glance, updated live from `GET /v1/console/live`. */
export function OverviewPage() {
  const live = useLiveOverview();
  const overview = live.overview;
  const marked = useRef(false);
  useEffect(() => {
    if (overview !== null && !marked.current) {
      marked.current = true;
      performance.mark("overview-ready");
    }
  }, [overview]);

  return (
    <Page
      name="overview"
      title="Overview"
      ready={overview !== null || live.error !== null}
      actions={<LiveIndicator state={live.state} updatedAt={live.updatedAt} />}
    >
      <ErrorBox error={live.error} />
      {overview === null ? (
        live.error === null && <Loading what="the overview" />
      ) : (
        <>
          <Section title="Streams" id="streams">
            {(overview.streams ?? []).length === 0 ? (
              <p class="muted">No streams declared.</p>
            ) : (
              <div class="cards">
                {overview.streams.map((s) => (
                  <StreamCard key={s.name} stream={s} samples={live.history.get(s.name) ?? []} />
                ))}
              </div>
            )}
          </Section>
          <div class="grid-2">
            <Section title="Consumers" id="consumers">
              <Consumers streams={overview.streams ?? []} />
            </Section>
            <Section title="Batch" id="batch-state">
              <BatchState overview={overview} />
            </Section>
          </div>
          <Section title="Speed layer freshness" id="speed">
            <SpeedTable speed={overview.speed ?? []} />
          </Section>
          <div class="grid-2">
            <Section title="Recent warnings and errors" id="errors">
              <Errors errors={overview.errors ?? []} />
            </Section>
            <Section title="Storage" id="storage">
              <Storage storage={overview.storage ?? []} />
            </Section>
          </div>
        </>
      )}
    </Page>
  );
}
