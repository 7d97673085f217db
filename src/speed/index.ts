// Public door of the speed layer: a view's continuous computation from its stream, checkpointed exactly once.
export { SpeedView, speedConsumer } from "./speed-view.js";
export type { SpeedViewOptions } from "./speed-view.js";
export { SpeedCheckpointReader } from "./checkpoint-reader.js";
