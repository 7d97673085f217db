// Public door of the collect stage: HTTP endpoints that turn requests into durable stream appends.
export { Collector, deadLetterStream } from "./collector.js";
export type { DeadLetter, IngestItem, ItemResult, ReplayResult } from "./collector.js";
export { registerDeadLetterRoutes, REPLAY_BATCH } from "./dead-letters.js";
export type { DeadLetterDeps } from "./dead-letters.js";
export { registerCollectRoutes, bodyText, summarize } from "./routes.js";
export type { CollectDeps } from "./routes.js";
export { normalize, toMillis } from "./normalize.js";
export { uuidv7 } from "./event-id.js";
export { registerKinesisRoutes } from "./kinesis.js";
export { verifySigV4 } from "./sigv4.js";
