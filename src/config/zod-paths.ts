// Walks a zod schema and a parsed value by key path: the keys valid at a place, for "did you mean".
import { z } from "zod";

/** The value at a key path of parsed YAML/JSON (undefined when a step is missing). */
export function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const p of path)
    v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/**
 * The shape (key → schema) of the object schema at a key path, through records, arrays, optional
 * and default wrappers; at a union, the object option that has the next key (else the first).
 */
export function shapeAt(
  schema: z.ZodType,
  path: readonly PropertyKey[],
): Record<string, unknown> | undefined {
  let s: z.ZodType | undefined = schema;
  const pickObject = (u: z.ZodType | undefined, key?: PropertyKey): z.ZodType | undefined => {
    const cur = unwrap(u);
    if (!(cur instanceof z.ZodUnion)) return cur;
    const objects = (cur._zod.def.options as z.ZodType[])
      .map(unwrap)
      .filter((o): o is z.ZodObject => o instanceof z.ZodObject);
    return objects.find((o) => key !== undefined && key in o.shape) ?? objects[0];
  };
  for (const p of path) {
    s = pickObject(s, p);
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(p)];
    else if (s instanceof z.ZodRecord) s = s._zod.def.valueType as z.ZodType;
    else if (s instanceof z.ZodArray) s = s._zod.def.element as z.ZodType;
    else return undefined;
  }
  s = pickObject(s);
  return s instanceof z.ZodObject ? (s.shape as Record<string, unknown>) : undefined;
}

/** The schema inside optional, default, nullable and pipe wrappers. */
function unwrap(s: z.ZodType | undefined): z.ZodType | undefined {
  let cur = s;
  for (let i = 0; i < 10 && cur; i++) {
    const def = cur._zod.def as { innerType?: z.ZodType; in?: z.ZodType };
    if (def.innerType) cur = def.innerType;
    else if (def.in) cur = def.in;
    else break;
  }
  return cur;
}
