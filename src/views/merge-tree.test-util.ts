// Test helper of the views stage: folds partial states in a random merge tree (associativity tests).

/** Folds `parts` with `merge` in the tree the `picks` (numbers in [0, 1)) choose. */
export function mergeTree<T>(parts: T[], picks: number[], merge: (a: T, b: T) => T): T {
  const pool = parts.slice();
  let k = 0;
  const pick = (n: number): number => Math.floor((picks[k++ % picks.length] ?? 0) * n);
  while (pool.length > 1) {
    const [a] = pool.splice(pick(pool.length), 1);
    const j = pick(pool.length);
    pool[j] = pick(2) === 0 ? merge(pool[j]!, a!) : merge(a!, pool[j]!);
  }
  return pool[0]!;
}

/** Bytes as hex, to compare serialized states in assertions. */
export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
