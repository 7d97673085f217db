// Server process of http_to_stream: `tributary up` (no replay; the land stage unless `land: false`) on a fresh temp project.
import { pino } from "pino";
import { loadPipeline } from "../../../src/config/index.js";
import { startNode, type Role } from "../../../src/runtime/node.js";
import { createBenchProject, type ProjectOptions } from "../../flights.js";

/** The line this process prints once it listens. */
export interface ServerHello {
  readonly url: string;
  readonly pid: number;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? "{}") as ProjectOptions & {
    land?: boolean;
    roles?: Role[];
  };
  const project = createBenchProject(options);
  const pipeline = loadPipeline(project.dir);
  // Warnings and errors go to stderr (stdout carries the hello line); normal operation logs none.
  const log = pino({ level: "warn" }, pino.destination(2));
  const node = await startNode(pipeline, {
    port: 0,
    host: "127.0.0.1",
    replay: false,
    log,
    ...(options.roles !== undefined
      ? { roles: options.roles }
      : {
          land: options.land !== false,
          // Collect alone runs no batch engine either; the full process runs every stage.
          batch: options.land !== false,
        }),
  });
  const hello: ServerHello = { url: node.url, pid: process.pid };
  process.stdout.write(JSON.stringify(hello) + "\n");
  // The benchmark needs no graceful landing of what is left: drop the folder and exit, so a
  // --cpu-prof profile is written and the next run starts at once.
  process.once("SIGTERM", () => {
    project.cleanup();
    process.exit(0);
  });
}

await main();
