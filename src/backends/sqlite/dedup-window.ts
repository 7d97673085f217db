// Remembers recent event ids per stream, bounded in time and count, to deduplicate retried appends.

/**
 * A FIFO of ids with the position of their stored copy. An id is forgotten once older than the
 * window or when more than `maxIds` are held (oldest first), so memory stays bounded.
 */
export class DedupWindow {
  readonly #windowMs: number;
  readonly #maxIds: number;
  readonly #seqOf = new Map<string, number>();
  #ids: string[] = [];
  #times: number[] = [];
  #head = 0;

  constructor(windowMs: number, maxIds: number) {
    this.#windowMs = windowMs;
    this.#maxIds = maxIds;
  }

  /** Number of ids held. */
  get size(): number {
    return this.#seqOf.size;
  }

  /** The stored position of `id` if it was seen within the window. */
  get(id: string, now: number): number | undefined {
    this.#evict(now);
    return this.#seqOf.get(id);
  }

  /** Remembers `id` as stored at `seq`, received at `at` (ms). */
  add(id: string, seq: number, at: number): void {
    // Evict first: an expired id still in the map would otherwise make this add a silent no-op.
    this.#evict(at);
    if (this.#seqOf.has(id)) return;
    this.#seqOf.set(id, seq);
    this.#ids.push(id);
    this.#times.push(at);
    if (this.#seqOf.size > this.#maxIds) this.#evictOne();
  }

  /** Forgets ids added by a transaction that rolled back. */
  forget(ids: readonly string[]): void {
    for (const id of ids) this.#seqOf.delete(id);
    // They were the latest adds: drop their FIFO slots too, else evicting a stale slot later would
    // forget the same id stored again by the retry, and the count bound would slip.
    while (this.#ids.length > this.#head && !this.#seqOf.has(this.#ids[this.#ids.length - 1]!)) {
      this.#ids.pop();
      this.#times.pop();
    }
  }

  #evict(now: number): void {
    const cutoff = now - this.#windowMs;
    while (this.#head < this.#ids.length && this.#times[this.#head]! < cutoff) this.#evictOne();
  }

  #evictOne(): void {
    const id = this.#ids[this.#head];
    if (id === undefined) return;
    this.#seqOf.delete(id);
    this.#head++;
    if (this.#head > 65_536 && this.#head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
  }
}
