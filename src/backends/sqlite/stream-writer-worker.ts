// Worker-thread entry of the embedded Stream's writer (see stream-writer.ts).
import { parentPort, workerData } from "node:worker_threads";
import { serveWriter } from "./stream-writer.js";

serveWriter(parentPort!, (workerData as { path: string }).path);
