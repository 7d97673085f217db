// The hash router: `#/<page>/<arg>?<query>`, read on every hashchange.
import { useEffect, useState } from "preact/hooks";

/** Where the URL hash points. */
export interface Route {
  /** The first path segment; `overview` for `#/` or no hash. */
  page: string;
  /** The decoded second segment (a stream, dataset, view or dashboard name), or null. */
  arg: string | null;
  query: URLSearchParams;
}

/** Parses `#/catalog/raw.flights?x=1`. */
export function parseHash(hash: string): Route {
  const text = hash.replace(/^#\/?/, "");
  const q = text.indexOf("?");
  const path = q < 0 ? text : text.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : text.slice(q + 1));
  const parts = path.split("/").filter((p) => p !== "");
  let arg: string | null = null;
  if (parts[1] !== undefined) {
    try {
      arg = decodeURIComponent(parts.slice(1).join("/"));
    } catch {
      arg = parts.slice(1).join("/");
    }
  }
  return { page: parts[0] ?? "overview", arg, query };
}

/** The hash of a page: `href("catalog", "raw.flights")` → `#/catalog/raw.flights`. */
export function href(page: string, arg?: string | null, query?: Record<string, string>): string {
  let out = page === "overview" ? "#/" : `#/${page}`;
  if (arg !== undefined && arg !== null) out += `/${encodeURIComponent(arg)}`;
  if (query !== undefined) out += `?${new URLSearchParams(query).toString()}`;
  return out;
}

/** Goes to a hash (the hashchange listener re-renders). */
export function navigate(hash: string): void {
  if (window.location.hash !== hash) window.location.hash = hash;
}

/** The current route, updated on every hashchange. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseHash(window.location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
