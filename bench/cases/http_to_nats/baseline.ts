// Baseline of http_to_nats: a bare JetStream publish loop of the same payloads, with the same client and acks.
import { connect, createInbox, headers } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { bodyFactory } from "../http_to_stream/bodies.js";

/** What the driver asks for. */
export interface NatsBaselineArgs {
  readonly servers: string;
  /** A stream name of its own (deleted at the end). */
  readonly stream: string;
  readonly seconds: number;
  /** Concurrent publishers, each like one HTTP connection: publish a batch, await its acks, repeat. */
  readonly publishers: number;
  /** JetStream duplicate window, as the Tributary stream's (`dedup_window`). */
  readonly dedupWindowMs: number;
  /**
   * `publish`: the client's `js.publish` per event (a request each), the acks of a batch awaited
   * together. `pipelined`: the batch's messages published back to back with replies to one inbox
   * (`<inbox>.<i>`), then every ack awaited: what the NATS backend does.
   */
  readonly mode: "publish" | "pipelined";
}

/** What it reports. */
export interface NatsBaselineSummary {
  readonly events: number;
  readonly seconds: number;
  readonly eventsPerSec: number;
  readonly batches: number;
  readonly cpuSeconds: number;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as NatsBaselineArgs;
  const nc = await connect({ servers: a.servers });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: a.stream,
    subjects: [`${a.stream}.>`],
    storage: "file",
    num_replicas: 1,
    duplicate_window: a.dedupWindowMs * 1_000_000,
  });
  const js = jetstream(nc);
  const subject = `${a.stream}.0`;
  const encoder = new TextEncoder();
  /** One batch the pipelined way: publish all with replies to one inbox, wait for every ack. */
  const pipelined = (batch: readonly { flight_id: string }[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const inbox = createInbox();
      let pending = batch.length;
      const sub = nc.subscribe(`${inbox}.*`, {
        callback: (err, msg) => {
          if (err) return reject(err);
          const ack = JSON.parse(new TextDecoder().decode(msg.data)) as { error?: unknown };
          if (ack.error) return reject(new Error(JSON.stringify(ack.error)));
          if (--pending === 0) {
            sub.unsubscribe();
            resolve();
          }
        },
      });
      batch.forEach((e, i) => {
        const h = headers();
        h.set("Nats-Msg-Id", e.flight_id);
        nc.publish(subject, encoder.encode(JSON.stringify(e)), {
          reply: `${inbox}.${i}`,
          headers: h,
        });
      });
    });
  let events = 0;
  let batches = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const until = started + a.seconds * 1000;
  await Promise.all(
    Array.from({ length: a.publishers }, async () => {
      // The same request bodies as the HTTP load (100 flights-like events, unique ids): each event
      // is one message, its id the message id (deduplication), all acks awaited before the next.
      const bodies = bodyFactory("batched");
      while (performance.now() < until) {
        const batch = JSON.parse(bodies.next().toString("latin1")) as { flight_id: string }[];
        if (a.mode === "pipelined") await pipelined(batch);
        else
          await Promise.all(
            batch.map((e) => js.publish(subject, JSON.stringify(e), { msgID: e.flight_id })),
          );
        events += batch.length;
        batches++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await jsm.streams.delete(a.stream);
  await nc.close();
  const summary: NatsBaselineSummary = {
    events,
    seconds,
    eventsPerSec: events / seconds,
    batches,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
}

await main();
