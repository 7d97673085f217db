// Remembers recent event ids per stream, bounded in time and count, to deduplicate retried appends.

/** Slots of a new table; it doubles as ids arrive, so memory follows use, not `maxIds`. */
const INITIAL_SLOTS = 1024;

/**
 * A FIFO of ids with the position of their stored copy. An id is forgotten once older than the
 * window or when more than `maxIds` are held (oldest first), so memory stays bounded.
 *
 * Ids are held as 64-bit fingerprints in typed arrays (open addressing, linear probing), not as
 * strings in a `Map`: 300k ids take ~10 MiB instead of ~40 MiB, and none of it is a heap object,
 * so the writer thread's garbage collector never walks them (a `Map` of that size caused ack
 * pauses of tens of milliseconds at every major collection, BENCHMARKS.md). Two ids may share a
 * fingerprint (about one pair in 10^13 at 300k ids); `get` then reports the other id's position,
 * which is why the stream writer checks a hit against the stored id before treating an event as
 * a duplicate (see `seenBefore` in stream-writer.ts).
 */
export class DedupWindow {
  readonly #windowMs: number;
  readonly #maxIds: number;
  // Hash table, 16 bytes per slot in one buffer so a probe touches one cache line:
  // u32[4i] and u32[4i+1] hold the fingerprint, f64[2i+1] the position (0 marks an empty slot).
  #mask = INITIAL_SLOTS - 1;
  #u32 = new Uint32Array(INITIAL_SLOTS * 4);
  #f64 = new Float64Array(this.#u32.buffer);
  #size = 0;
  // FIFO ring of the held fingerprints in insertion order, with their time.
  #ringHi = new Uint32Array(INITIAL_SLOTS);
  #ringLo = new Uint32Array(INITIAL_SLOTS);
  #ringAt = new Float64Array(INITIAL_SLOTS);
  #head = 0;
  #count = 0;

  constructor(windowMs: number, maxIds: number) {
    this.#windowMs = windowMs;
    this.#maxIds = maxIds;
  }

  /** Number of ids held. */
  get size(): number {
    return this.#size;
  }

  /** The stored position of `id` (or of an id with the same fingerprint) if seen within the window. */
  get(id: string, now: number): number | undefined {
    this.#evict(now);
    fingerprint(id);
    const slot = this.#find(fpHi, fpLo);
    return slot < 0 ? undefined : this.#f64[2 * slot + 1];
  }

  /**
   * Remembers `id` as stored at `seq` (a position, >= 1), received at `at` (ms), unless it is held
   * already: then nothing changes and the held position is returned (the first copy and its time
   * win). One call does the lookup and the insert, so the hot path hashes each id once.
   */
  add(id: string, seq: number, at: number): number | undefined {
    // Evict first: an expired id still held would otherwise look like a duplicate.
    this.#evict(at);
    fingerprint(id);
    const [hi, lo] = [fpHi, fpLo];
    const [mask, u32, f64] = [this.#mask, this.#u32, this.#f64];
    let i = hi & mask;
    for (; f64[2 * i + 1] !== 0; i = (i + 1) & mask) {
      if (u32[4 * i] === hi && u32[4 * i + 1] === lo) return f64[2 * i + 1];
    }
    if ((this.#size + 1) * 2 > mask + 1) this.#grow();
    this.#place(hi, lo, seq);
    this.#size++;
    this.#push(hi, lo, at);
    if (this.#size > this.#maxIds) this.#evictOne();
    return undefined;
  }

  /** Forgets ids added by a transaction that rolled back. */
  forget(ids: readonly string[]): void {
    for (const id of ids) {
      fingerprint(id);
      const slot = this.#find(fpHi, fpLo);
      if (slot >= 0) this.#delete(slot);
    }
    // They were the latest adds: drop their FIFO slots too, else evicting a stale slot later would
    // forget the same id stored again by the retry, and the count bound would slip.
    while (this.#count > 0) {
      const tail = (this.#head + this.#count - 1) % this.#ringHi.length;
      if (this.#find(this.#ringHi[tail]!, this.#ringLo[tail]!) >= 0) break;
      this.#count--;
    }
  }

  /** Slot holding the fingerprint, or -1. */
  #find(hi: number, lo: number): number {
    const [mask, u32, f64] = [this.#mask, this.#u32, this.#f64];
    for (let i = hi & mask; f64[2 * i + 1] !== 0; i = (i + 1) & mask) {
      if (u32[4 * i] === hi && u32[4 * i + 1] === lo) return i;
    }
    return -1;
  }

  /** Writes an entry into the first free slot of its probe run. */
  #place(hi: number, lo: number, seq: number): void {
    const [mask, u32, f64] = [this.#mask, this.#u32, this.#f64];
    let i = hi & mask;
    while (f64[2 * i + 1] !== 0) i = (i + 1) & mask;
    u32[4 * i] = hi;
    u32[4 * i + 1] = lo;
    f64[2 * i + 1] = seq;
  }

  /** Empties a slot, shifting later entries of its probe run back so lookups still find them. */
  #delete(slot: number): void {
    const [mask, u32, f64] = [this.#mask, this.#u32, this.#f64];
    let hole = slot;
    for (let j = (slot + 1) & mask; f64[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = u32[4 * j]! & mask;
      // The entry at j may move into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (stays) continue;
      u32[4 * hole] = u32[4 * j]!;
      u32[4 * hole + 1] = u32[4 * j + 1]!;
      f64[2 * hole + 1] = f64[2 * j + 1]!;
      hole = j;
    }
    f64[2 * hole + 1] = 0;
    this.#size--;
  }

  #grow(): void {
    const [slots, u32, f64] = [this.#mask + 1, this.#u32, this.#f64];
    this.#mask = slots * 2 - 1;
    this.#u32 = new Uint32Array(slots * 2 * 4);
    this.#f64 = new Float64Array(this.#u32.buffer);
    for (let j = 0; j < slots; j++) {
      if (f64[2 * j + 1] !== 0) this.#place(u32[4 * j]!, u32[4 * j + 1]!, f64[2 * j + 1]!);
    }
  }

  #push(hi: number, lo: number, at: number): void {
    let cap = this.#ringHi.length;
    if (this.#count === cap) {
      // Unroll the ring into arrays twice the size, oldest first.
      const order = (a: Uint32Array | Float64Array, b: Uint32Array | Float64Array): void => {
        for (let k = 0; k < this.#count; k++) b[k] = a[(this.#head + k) % cap]!;
      };
      const [rh, rl, ra] = [
        new Uint32Array(cap * 2),
        new Uint32Array(cap * 2),
        new Float64Array(cap * 2),
      ];
      order(this.#ringHi, rh);
      order(this.#ringLo, rl);
      order(this.#ringAt, ra);
      [this.#ringHi, this.#ringLo, this.#ringAt, this.#head] = [rh, rl, ra, 0];
      cap *= 2;
    }
    const tail = (this.#head + this.#count) % cap;
    this.#ringHi[tail] = hi;
    this.#ringLo[tail] = lo;
    this.#ringAt[tail] = at;
    this.#count++;
  }

  #evict(now: number): void {
    const cutoff = now - this.#windowMs;
    while (this.#count > 0 && this.#ringAt[this.#head]! < cutoff) this.#evictOne();
  }

  /** Forgets the oldest held id. */
  #evictOne(): void {
    while (this.#count > 0) {
      const h = this.#head;
      this.#head = (h + 1) % this.#ringHi.length;
      this.#count--;
      // A ring slot whose id was forgotten by a rollback holds nothing: skip it.
      const slot = this.#find(this.#ringHi[h]!, this.#ringLo[h]!);
      if (slot >= 0) {
        this.#delete(slot);
        return;
      }
    }
  }
}

// The last fingerprint computed (two independent 32-bit hashes), module state to avoid allocating.
let fpHi = 0;
let fpLo = 0;

/** Sets fpHi/fpLo to the 64-bit fingerprint of `s`: FNV-1a and a multiplicative hash, each finalized (murmur3 fmix32). */
function fingerprint(s: string): void {
  let a = 0x811c9dc5;
  let b = s.length ^ 0x9747b28c;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  fpHi = fmix32(a) >>> 0;
  fpLo = fmix32(b ^ Math.imul(a, 0x27d4eb2f)) >>> 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
