// Public door of the config stage: load tributary.yaml into a resolved Pipeline.
export { CONFIG_FILE, findConfigFile, loadPipeline, parseConfigText, nearest } from "./load.js";
export { resolvePipeline, sha256Hex, SEGMENT_FIELDS } from "./pipeline.js";
export type { Column, KeyPlan, Pipeline, StreamPlan } from "./pipeline.js";
export { configSchema, parseDuration, parseSize, FIELD_TYPES } from "./schema.js";
export type { FieldType, PipelineConfig, ReplayConfig, StreamConfig } from "./schema.js";
