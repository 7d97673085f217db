// Server process of stream_to_speed and view_query: `tributary up` (every stage, no replay) on a fresh project with the view.
import { pino } from "pino";
import { loadPipeline } from "../../../src/config/index.js";
import { startNode } from "../../../src/runtime/node.js";
import { createViewProject } from "./project.js";

/** The line this process prints once it listens. */
export interface ViewServerHello {
  readonly url: string;
  readonly pid: number;
  /** The project's lake folder (view_query's baseline reads the landed raw files there). */
  readonly lakeDir: string;
}

async function main(): Promise<void> {
  const project = createViewProject();
  const pipeline = loadPipeline(project.dir);
  const log = pino({ level: "warn" }, pino.destination(2));
  const node = await startNode(pipeline, { port: 0, host: "127.0.0.1", replay: false, log });
  const hello: ViewServerHello = { url: node.url, pid: process.pid, lakeDir: pipeline.lakeDir };
  process.stdout.write(JSON.stringify(hello) + "\n");
  process.once("SIGTERM", () => {
    project.cleanup();
    process.exit(0);
  });
}

await main();
