// Backend contracts: the interfaces every stage uses and every backend implements.
export type * from "./stream.js";
export { checkPartition, partitionOf } from "./stream.js";
export type * from "./catalog.js";
export type * from "./object-store.js";
export type * from "./speed-store.js";
export type * from "./job-queue.js";
