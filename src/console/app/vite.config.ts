// Vite build of the web console (Preact + tree-shaken ECharts) into dist/web, which the server serves.
import { defineConfig } from "vite";

/** This folder: the build's root, whatever directory `vite build --config …` runs from. */
const root = decodeURIComponent(new URL(".", import.meta.url).pathname);

/** The console build: `npm run build:console`. */
export default defineConfig({
  root,
  base: "/",
  // Preact's automatic JSX runtime, without @preact/preset-vite.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../../../dist/web",
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 800,
  },
});
