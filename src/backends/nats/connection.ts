// Opens NATS with JetStream for the distributed stream (the @nats-io clients loaded lazily).
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";

/** Options of `connectNats`. */
export interface NatsOptions {
  /** Server URLs, e.g. `nats://nats-1.internal:4222`, or a list of a cluster's servers. */
  readonly servers: string | readonly string[];
  /** Token, when the server requires one. */
  readonly token?: string;
  /** User, when the server requires a user and password. */
  readonly user?: string;
  /** Password of `user`. */
  readonly pass?: string;
  /**
   * How long a JetStream API call or a publish waits for its reply (default 5 s). In a cluster a
   * stream without a leader (about 6 s after losing one) fails publishes; callers retry them.
   */
  readonly timeoutMs?: number;
  /** Connection name the server's monitoring shows (default `tributary`). */
  readonly name?: string;
}

/** The servers used when none are configured (the test server). */
export const DEFAULT_NATS_SERVERS = "127.0.0.1:4222";

/** The default reply timeout of JetStream calls and publishes. */
export const DEFAULT_NATS_TIMEOUT_MS = 5_000;

/** A connection with JetStream, and the few nats-core helpers the backend needs. */
export interface NatsClient {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** A new, empty set of message headers. */
  readonly headers: () => MsgHdrs;
  /** A new unique subject to receive replies on. */
  readonly createInbox: () => string;
  /** The reply timeout in effect, ms. */
  readonly timeoutMs: number;
  /** False from a disconnect until the client has reconnected. */
  readonly connected: () => boolean;
}

/**
 * Connects to NATS and checks that JetStream is enabled for the account. Loads `@nats-io/*` here,
 * so a process that never opens a distributed backend never loads them. A server that cannot be
 * reached rejects; once connected, the client reconnects without limit (a stream process is useless
 * without its server), and calls made while it is down fail after `timeoutMs`.
 * @example const client = await connectNats({ servers: "nats://127.0.0.1:4222" });
 */
export async function connectNats(options: NatsOptions): Promise<NatsClient> {
  const [{ connect, headers, createInbox }, { jetstream, jetstreamManager }] = await Promise.all([
    import("@nats-io/transport-node"),
    import("@nats-io/jetstream"),
  ]);
  const timeoutMs = options.timeoutMs ?? DEFAULT_NATS_TIMEOUT_MS;
  const servers = typeof options.servers === "string" ? [options.servers] : [...options.servers];
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers,
      name: options.name ?? "tributary",
      timeout: timeoutMs,
      maxReconnectAttempts: -1,
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.user !== undefined ? { user: options.user, pass: options.pass ?? "" } : {}),
    });
  } catch (e) {
    throw new Error(`cannot connect to NATS at ${servers.join(", ")}`, { cause: e });
  }
  let connected = true;
  const watch = async (status: AsyncIterable<{ type: string }>): Promise<void> => {
    for await (const s of status) {
      if (s.type === "disconnect") connected = false;
      else if (s.type === "reconnect") connected = true;
    }
  };
  void watch(nc.status());
  try {
    // checkAPI asks for the account's JetStream info: a server without -js fails here, clearly.
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs, checkAPI: true });
    const js = jetstream(nc, { timeout: timeoutMs });
    return { nc, js, jsm, headers, createInbox, timeoutMs, connected: () => connected };
  } catch (e) {
    await nc.close();
    throw new Error(`JetStream is not available at ${servers.join(", ")}`, { cause: e });
  }
}
