// Browser-test support: the demo pipeline on a temp data folder, headless Chromium, pages that record console errors.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { parseConfigText, resolvePipeline } from "../../../src/config/index.js";
import { startNode, type RunningNode } from "../../../src/runtime/node.js";

/** Repository root. */
export const ROOT = join(import.meta.dirname, "..", "..", "..");
/** Debian's Chromium (`.ci/run` installs the `chromium` package). */
export const CHROMIUM = "/usr/bin/chromium";
/** Where screenshots go (a CI artifact; not committed). */
export const ARTIFACTS = join(ROOT, "test-artifacts", "console");
/** The demo's keys (examples/flights/tributary.yaml). */
export const DEMO_KEYS = {
  read: "demo-read-key",
  admin: "demo-admin-key",
  write: "demo-write-key",
} as const;

/**
 * Why browser tests cannot run here, or undefined when they can. Under CI=true a missing browser
 * is a failure (`.ci/run` installs it), never a skip.
 */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.env.CI === "true")
    throw new Error(`${CHROMIUM} is missing; .ci/run installs Debian's chromium package`);
  return `no ${CHROMIUM} on this machine (apt-get install chromium)`;
}

/** Headless Chromium with the flags a sandbox-less CI container needs, on a fresh profile. */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The demo pipeline running in this process with its data in a temp folder. */
export interface Demo {
  readonly url: string;
  readonly node: RunningNode;
  stop(): Promise<void>;
}

/**
 * Starts examples/flights (models, seed, views, dashboard) with its data in a temp folder, the
 * replay at `speed` times event time (default: the demo's own).
 */
export async function startDemo(options: { speed?: number; replay?: boolean } = {}): Promise<Demo> {
  const root = join(ROOT, "examples", "flights");
  const file = join(root, "tributary.yaml");
  const data = mkdtempSync(join(tmpdir(), "trb-console-"));
  const config = parseConfigText(readFileSync(file, "utf8"), file, {});
  const pipeline = resolvePipeline(
    { ...config, data_dir: data, lake: { ...config.lake, location: join(data, "lake") } },
    root,
  );
  const node = await startNode(pipeline, {
    port: 0,
    host: "127.0.0.1",
    replay: options.replay ?? true,
    ...(options.speed === undefined ? {} : { speed: options.speed }),
    log: pino({ level: "silent" }),
  });
  return {
    url: node.url,
    node,
    stop: async () => {
      try {
        await node.stop();
      } finally {
        rmSync(data, { recursive: true, force: true });
      }
    },
  };
}

/** A page that remembers every console error and uncaught exception it saw. */
export interface WatchedPage {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Console errors and page errors so far. */
  readonly errors: string[];
  close(): Promise<void>;
}

/** Opens a page on `url`, signed in with `key` (none: the login page shows). */
export async function openConsole(
  browser: Browser,
  url: string,
  key?: string,
): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  // Tests run under tsx, whose esbuild transform wraps named functions in `__name(...)`; functions
  // passed to page.evaluate carry that call into the page, so the page needs a no-op `__name`.
  await context.addInitScript({ content: "globalThis.__name = (f) => f;" });
  if (key !== undefined)
    await context.addInitScript((k) => {
      if (!localStorage.getItem("tributary.key")) localStorage.setItem("tributary.key", k);
    }, key);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`page: ${e.message}`));
  await page.goto(url);
  return { page, context, errors, close: () => context.close() };
}

/** Navigates to a hash route and waits until its page has rendered its first data. */
export async function visit(page: Page, hash: string, name: string): Promise<void> {
  await page.evaluate((h) => {
    window.location.hash = h;
  }, hash);
  await page.waitForSelector(`main[data-page="${name}"][data-ready="true"]`, { timeout: 30_000 });
}

/** Saves a full-page screenshot under test-artifacts/console/. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** GETs an API path with a key; throws unless 2xx. */
export async function api<T>(url: string, path: string, key: string): Promise<T> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** POSTs JSON to an API path with a key; throws unless 2xx. */
export async function post<T>(url: string, path: string, key: string, body: unknown): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
