// Public door of the govern stage: keys and scopes (later: roles, masks, audit, retention).
export { KeyRing, allows, basicUser, bearerSecret } from "./key-ring.js";
export type { Access } from "./key-ring.js";
