// Resolves file references of tributary.yaml: project-relative paths and `{{file:<package>/<path>}}`.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join } from "node:path";

const PACKAGE_FILE = /\{\{file:([^}]+)\}\}/g;

/**
 * The absolute path of a file reference: `{{file:<package>/<path>}}` (a file inside an installed npm
 * package, or else a project path), or a plain path relative to the project folder.
 * Throws when a package file cannot be found.
 * @example resolvePackageFile("{{file:vega-datasets/data/airports.csv}}", "/project")
 */
export function resolvePackageFile(reference: string, root: string): string {
  const m = /^\{\{file:([^}]+)\}\}$/.exec(reference.trim());
  if (!m) return isAbsolute(reference) ? reference : join(root, reference);
  return findPackageFile(m[1]!.trim(), root);
}

/** Replaces every `{{file:<package>/<path>}}` inside a text (e.g. SQL) with `quote(<absolute path>)`. */
export function replacePackageFiles(
  text: string,
  root: string,
  quote: (path: string) => string,
): string {
  return text.replace(PACKAGE_FILE, (_, spec: string) => quote(findPackageFile(spec.trim(), root)));
}

function findPackageFile(path: string, root: string): string {
  if (isAbsolute(path)) return path;
  if (existsSync(join(root, path))) return join(root, path);
  const parts = path.split("/");
  const pkg = parts[0]!.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
  const rest = path.slice(pkg.length + 1);
  const require = createRequire(join(root, "package.json"));
  for (const dir of require.resolve.paths(pkg) ?? []) {
    const candidate = join(dir, pkg, rest);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`cannot find ${path} (install the npm package ${pkg})`);
}
