// The console shell: sign-in, the session, the header and left navigation, and the page for the current hash.
import type { ComponentChildren } from "preact";
import { useEffect, useErrorBoundary, useState } from "preact/hooks";
import {
  api,
  ApiError,
  describeError,
  isAbort,
  onUnauthorized,
  storedKey,
  storeKey,
} from "./api.js";
import { BatchPage } from "./batch.js";
import { CatalogPage, DatasetPage } from "./catalog.js";
import { loadCharts } from "./chart.js";
import { DashboardPage, DashboardsPage } from "./dashboards.js";
import { OverviewPage } from "./overview.js";
import { href, useRoute } from "./router.js";
import type { Route } from "./router.js";
import { SqlPage } from "./sql.js";
import { StreamPage, StreamsPage } from "./streams.js";
import type { Session } from "./types.js";
import { ErrorBox, Page, SessionContext } from "./ui.js";
import { ViewsPage } from "./views.js";

const NAV: [label: string, page: string][] = [
  ["Overview", "overview"],
  ["Streams", "streams"],
  ["Catalog", "catalog"],
  ["Batch", "batch"],
  ["Views", "views"],
  ["SQL", "sql"],
  ["Dashboards", "dashboards"],
];

/** Which nav entry a page belongs to (a dataset is part of the catalog). */
const NAV_OF: Record<string, string> = { dataset: "catalog", dashboard: "dashboards" };

/** The sign-in page: asks for an API key and checks it with `GET /v1/console/session`. */
function LoginPage(props: {
  notice: string | null;
  onSignedIn: (key: string, session: Session) => void;
}) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const secret = key.trim();
    if (secret === "") {
      setError(new ApiError(0, "KEY_REQUIRED", "Enter an API key."));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const session = await api<Session>("/v1/console/session", { key: secret });
      props.onSignedIn(secret, session);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <main id="main" class="login" data-page="login" data-ready="true">
      <form class="login-card" onSubmit={(e) => void submit(e)}>
        <h1>Tributary console</h1>
        <p class="muted">
          Sign in with an API key from the pipeline's <code>keys</code>.
        </p>
        {props.notice !== null && error === null && (
          <p class="notice" role="status">
            {props.notice}
          </p>
        )}
        <label for="key">API key</label>
        <input
          id="key"
          name="key"
          type="password"
          autoComplete="current-password"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          required
        />
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

/** The page component for a route; keyed by the caller so each route starts fresh. */
function RoutePage(props: { route: Route }) {
  const { page, arg, query } = props.route;
  switch (page) {
    case "overview":
      return <OverviewPage />;
    case "streams":
      return arg === null ? <StreamsPage /> : <StreamPage name={arg} />;
    case "catalog":
      return arg === null ? <CatalogPage /> : <DatasetPage name={arg} />;
    case "batch":
      return <BatchPage />;
    case "views":
      return <ViewsPage view={arg} />;
    case "sql":
      return <SqlPage initial={query.get("q")} />;
    case "dashboards":
      return arg === null ? <DashboardsPage /> : <DashboardPage name={arg} />;
    default:
      return (
        <Page name="notfound" title="Page not found" ready>
          <p>
            There is no page <code>#/{page}</code>. <a href="#/">Go to the overview</a>.
          </p>
        </Page>
      );
  }
}

/** Shows a page's rendering error in place of the page instead of leaving it uncaught. */
function Guard(props: { children: ComponentChildren }) {
  const [error, reset] = useErrorBoundary();
  if (error !== undefined) {
    return (
      <Page name="error" title="This page failed" ready>
        <ErrorBox error={error} />
        <button type="button" onClick={reset}>
          Try again
        </button>
      </Page>
    );
  }
  return <>{props.children}</>;
}

/** The signed-in frame: header, navigation and the routed page. */
function Shell(props: { session: Session; route: Route; onSignOut: () => void }) {
  const { session, route } = props;
  const current = NAV_OF[route.page] ?? route.page;
  useEffect(() => {
    // Fetch the chart code while the first page loads its data.
    loadCharts().catch(() => undefined);
  }, []);
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={skipToMain}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/">
          Tributary
        </a>
        <span class="pipeline" title="Pipeline">
          {session.pipeline.name}
        </span>
        <span class="spacer" />
        <span class="key-id">
          Key <code>{session.key.id}</code>
          {session.can.admin && <span class="badge tone-info">admin</span>}
        </span>
        <button type="button" onClick={props.onSignOut}>
          Sign out
        </button>
      </header>
      <nav aria-label="Main" class="side">
        <ul>
          {NAV.map(([label, page]) => (
            <li key={page}>
              <a href={href(page)} aria-current={current === page ? "page" : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="content">
        <Guard key={`${route.page}/${route.arg ?? ""}`}>
          <RoutePage route={route} />
        </Guard>
      </div>
    </div>
  );
}

/** Moves focus to the page without changing the hash (the hash is the route). */
function skipToMain(event: Event): void {
  event.preventDefault();
  document.getElementById("main")?.focus();
}

/** The console: the sign-in page without a key, else the app for the key's session. */
export function App() {
  const route = useRoute();
  const [key, setKey] = useState<string | null>(() => storedKey());
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    onUnauthorized(() => {
      storeKey(null);
      setKey(null);
      setSession(null);
      setNotice("The server refused the key (401). Sign in again.");
    });
  }, []);

  useEffect(() => {
    if (key === null || session !== null) return;
    const abort = new AbortController();
    setError(null);
    api<Session>("/v1/console/session", { signal: abort.signal }).then(
      (s) => setSession(s),
      (err: unknown) => {
        if (isAbort(err)) return;
        if (err instanceof ApiError && err.status === 403) {
          storeKey(null);
          setKey(null);
          setNotice(`${describeError(err).code}: ${describeError(err).message}`);
          return;
        }
        setError(err);
      },
    );
    return () => abort.abort();
  }, [key, attempt]);

  const signOut = (): void => {
    storeKey(null);
    setKey(null);
    setSession(null);
    setNotice(null);
  };

  if (key === null) {
    return (
      <LoginPage
        notice={notice}
        onSignedIn={(secret, s) => {
          storeKey(secret);
          setNotice(null);
          setSession(s);
          setKey(secret);
        }}
      />
    );
  }
  if (session === null) {
    return (
      <main id="main" class="login" data-page="loading">
        <div class="login-card">
          <h1>Tributary console</h1>
          {error === null ? (
            <p class="muted">Loading the session…</p>
          ) : (
            <>
              <ErrorBox error={error} />
              <div class="row">
                <button type="button" class="primary" onClick={() => setAttempt((n) => n + 1)}>
                  Retry
                </button>
                <button type="button" onClick={signOut}>
                  Sign out
                </button>
              </div>
            </>
          )}
        </div>
      </main>
    );
  }
  return (
    <SessionContext.Provider value={session}>
      <Shell session={session} route={route} onSignOut={signOut} />
    </SessionContext.Provider>
  );
}
