// Records every module URL this process resolves (in globalThis.__resolved), for the test that the
// embedded path loads no distributed client. Use with `node --import ./record-loads.mjs`.
import { register } from "node:module";
import { MessageChannel } from "node:worker_threads";

const { port1, port2 } = new MessageChannel();
globalThis.__resolved = [];
port1.on("message", (url) => globalThis.__resolved.push(url));
port1.unref();
register("./load-hooks.mjs", import.meta.url, { data: { port: port2 }, transferList: [port2] });
