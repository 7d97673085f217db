// Public door of the config stage: load tributary.yaml into a resolved Pipeline.
export {
  CONFIG_FILE,
  findConfigFile,
  loadPipeline,
  parseConfigText,
  nearest,
  yamlLineOf,
} from "./load.js";
export { resolvePipeline, sha256Hex, SEGMENT_FIELDS } from "./pipeline.js";
export type {
  BatchClock,
  BatchPlanConfig,
  Column,
  KeyPlan,
  Pipeline,
  SeedPlan,
  StreamPlan,
} from "./pipeline.js";
export { resolvePackageFile, replacePackageFiles } from "./files.js";
export { configSchema, parseDuration, parseSize, FIELD_TYPES } from "./schema.js";
export type {
  BatchConfig,
  ChartConfig,
  DashboardConfig,
  FieldType,
  PipelineConfig,
  ReplayConfig,
  SeedConfig,
  StreamConfig,
  ViewConfig,
  ViewFilterConfig,
} from "./schema.js";
export { shapeAt, valueAt } from "./zod-paths.js";
