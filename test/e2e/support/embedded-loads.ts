// Child of embedded-clients.test.ts: starts every role on the embedded backends, then prints the
// module URLs the process resolved (one JSON line).
import { pino } from "pino";
import { loadPipeline } from "../../../src/config/index.js";
import { startNode } from "../../../src/runtime/node.js";
import { createProject, defaultConfig } from "../harness.js";

const project = createProject(defaultConfig());
const node = await startNode(loadPipeline(project.dir), {
  port: 0,
  host: "127.0.0.1",
  replay: false,
  log: pino({ level: "silent" }),
});
await node.stop();
project.cleanup();
// Let the hook thread's last messages arrive.
await new Promise((r) => setTimeout(r, 200));
process.stdout.write(
  JSON.stringify((globalThis as { __resolved?: string[] }).__resolved ?? []) + "\n",
);
