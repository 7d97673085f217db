// ESLint flat config: recommended rules, a few type-aware ones, and the architecture's import boundaries.
// The boundaries (STYLE.md #1, #2, #5, #16) are `no-restricted-imports` patterns built per folder below.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

/** Stage folders: each is imported by others only through its `index.ts`. */
const STAGES = [
  "collect",
  "stream",
  "land",
  "lake",
  "catalog",
  "replicate",
  "batch",
  "views",
  "speed",
  "serve",
  "features",
  "govern",
  "console",
  "config",
];

/** Clients too heavy for the embedded path: only `await import()` them, in a backend's connection.ts. */
const HEAVY_CLIENTS = {
  regex: "^(nats|@nats-io/.*|@aws-sdk/.*|pg|pg-.*|ioredis)$",
  allowTypeImports: true,
  message:
    "Heavy clients load lazily: `await import()` them in src/backends/<impl>/connection.ts (STYLE #5); `import type` is fine.",
};

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Importing another stage's internals instead of its `index.ts`. */
const stageInternals = (own, up = "(\\.\\./)+") => ({
  regex: `^${up}(${STAGES.filter((s) => s !== own)
    .map(esc)
    .join("|")})/(?!index\\.js$).+`,
  message: "Import another stage only through its index.ts, its one public door (STYLE #1).",
});

/** Naming a concrete backend (or the registry) instead of a contract. */
const concreteBackends = {
  regex: "^(\\.\\.?/)+backends/(?!contracts/).+",
  message:
    "Stages use backends through src/backends/contracts/ only; only src/runtime/ and src/backends/registry.ts name concrete backends (STYLE #2).",
};

/** The CLI opens backends through the registry, like runtime/ does. */
const cliBackends = {
  regex: "^(\\.\\./)+backends/(?!contracts/|registry\\.js$).+",
  message: "Open backends through src/backends/registry.ts (add a function there) (STYLE #2).",
};

/**
 * From inside `src/backends/<impl>/`: anything outside its own folder but contracts, errors.ts and
 * the catalog's one schema definition (shared by the SQLite and PostgreSQL catalogs).
 */
const backendOutside = {
  regex: "^\\.\\./(?!contracts/|catalog-schema\\.js$|\\.\\./errors\\.js$).+",
  message:
    "A backend imports only src/backends/contracts/ and src/errors.ts (STYLE #2); the registry and runtime wire it.",
};

const restrict = (files, patterns) => ({
  files,
  rules: { "@typescript-eslint/no-restricted-imports": ["error", { patterns }] },
});

export default defineConfig(
  {
    ignores: [
      "dist/**",
      "node_modules/**",
      "scratch/**",
      "schema/**",
      "bench/results/**",
      "test-artifacts/**",
      "**/.tributary/**",
      "examples/**/lake/**",
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        URL: "readonly",
        URLSearchParams: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        performance: "readonly",
        fetch: "readonly",
        AbortController: "readonly",
        AbortSignal: "readonly",
        TextEncoder: "readonly",
        TextDecoder: "readonly",
        structuredClone: "readonly",
        NodeJS: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
    },
  },
  // A few type-aware rules where they catch real bugs (a dropped promise is a lost ack), without
  // the cost and noise of strictTypeChecked.
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          // node:test's test()/describe() return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "it", "describe", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/await-thenable": "error",
    },
  },
  // The console's browser app (src/console/app): browser globals, and the same type-aware rules
  // against its own tsconfig (DOM libs, Preact JSX), which the Node project excludes.
  {
    files: ["src/console/app/**/*.{ts,tsx}"],
    languageOptions: {
      globals: {
        window: "readonly",
        document: "readonly",
        navigator: "readonly",
        location: "readonly",
        history: "readonly",
        localStorage: "readonly",
        sessionStorage: "readonly",
        fetch: "readonly",
        Response: "readonly",
        Headers: "readonly",
        EventSource: "readonly",
        HTMLElement: "readonly",
        HTMLDivElement: "readonly",
        HTMLInputElement: "readonly",
        HTMLSelectElement: "readonly",
        HTMLTextAreaElement: "readonly",
        Element: "readonly",
        Event: "readonly",
        KeyboardEvent: "readonly",
        DOMException: "readonly",
        requestAnimationFrame: "readonly",
        cancelAnimationFrame: "readonly",
        ResizeObserver: "readonly",
        Blob: "readonly",
        ClipboardItem: "readonly",
        getComputedStyle: "readonly",
      },
      parserOptions: {
        projectService: false,
        project: ["./src/console/app/tsconfig.json"],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/await-thenable": "error",
    },
  },
  // Import boundaries. A later block replaces an earlier one's options for the same rule, so each
  // block lists every pattern that applies to its files.
  restrict(["src/*.ts"], [HEAVY_CLIENTS, stageInternals("", "\\./"), concreteBackends]),
  ...STAGES.map((stage) =>
    restrict([`src/${stage}/**/*.ts`], [HEAVY_CLIENTS, stageInternals(stage), concreteBackends]),
  ),
  restrict(["src/runtime/**/*.ts"], [HEAVY_CLIENTS, stageInternals("")]),
  restrict(["src/cli/**/*.ts"], [HEAVY_CLIENTS, stageInternals(""), cliBackends]),
  restrict(["src/backends/registry.ts"], [HEAVY_CLIENTS, stageInternals("")]),
  restrict(["src/backends/*/**/*.ts"], [HEAVY_CLIENTS, backendOutside]),
  // Tests may build real embedded backends and talk to real servers, but still respect stage doors.
  ...STAGES.map((stage) => restrict([`src/${stage}/**/*.test.ts`], [stageInternals(stage)])),
  restrict(
    ["src/backends/**/*.test.ts", "src/backends/**/*.case.ts"],
    [
      {
        ...backendOutside,
        regex: "^\\.\\./(?!contracts/|catalog-schema\\.js$|\\.\\./errors\\.js$|registry\\.js$).+",
      },
    ],
  ),
  restrict(["src/runtime/**/*.test.ts", "src/cli/**/*.test.ts"], [stageInternals("")]),
  // Plain JavaScript (bin/, scripts/*.mjs, this file) is not in the TypeScript project.
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
