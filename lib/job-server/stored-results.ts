import { Fifo } from '../connection/fifo.js';

/** How long and how much the job server keeps of ended jobs. */
export interface ResultRetention {
  /** An outcome is dropped this long after its job ended; default 24 hours. */
  readonly maxAgeMs: number;
  /** At most this many outcomes, the oldest dropped first; default 100,000. */
  readonly maxCount: number;
  /** At most this many bytes of results and WORK_DATA parts in all, the oldest dropped first; default 64 MiB. */
  readonly maxBytes: number;
  /** A single result (with its parts) larger than this is not kept: its outcome says so; default 16 MiB. */
  readonly maxResultBytes: number;
}

export const DEFAULT_RESULT_RETENTION: ResultRetention = {
  maxAgeMs: 24 * 3_600_000,
  maxCount: 100_000,
  maxBytes: 64 * 1024 * 1024,
  maxResultBytes: 16 * 1024 * 1024,
};

/** Checks retention options, filling in the defaults. Throws RangeError on a value that is not a whole number ≥ 1. */
export function resultRetention(options: Partial<ResultRetention> = {}): ResultRetention {
  const maxBytes = options.maxBytes ?? DEFAULT_RESULT_RETENTION.maxBytes;
  // A smaller total bound lowers the default per-result bound with it.
  const maxResultBytes = options.maxResultBytes ?? Math.min(DEFAULT_RESULT_RETENTION.maxResultBytes, maxBytes);
  const retention = { ...DEFAULT_RESULT_RETENTION, ...options, maxBytes, maxResultBytes };
  for (const [name, value] of Object.entries(retention)) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`results.${name} must be a whole number ≥ 1, got ${String(value)}`);
  }
  if (retention.maxResultBytes > retention.maxBytes) {
    throw new RangeError(`results.maxResultBytes (${retention.maxResultBytes}) cannot be over results.maxBytes (${retention.maxBytes})`);
  }
  return retention;
}

/** How a kept job ended. */
export type StoredOutcome = 'complete' | 'fail' | 'exception';

/**
 * An ended job as the job server keeps it. Handles, unique ids, names, the payload and the parts
 * are byte strings (latin1, one character a byte): a kept result may stay for a day, and a string
 * lives in V8's heap, which compacts, while a Buffer's bytes are allocated outside it, where a
 * hundred thousand small ones kept among a drained queue's freed memory keep its pages resident.
 */
export interface StoredResult {
  readonly handle: string;
  readonly unique: string;
  readonly functionName: string;
  readonly outcome: StoredOutcome;
  /** WORK_COMPLETE's payload, or WORK_EXCEPTION's; empty for WORK_FAIL and when dropped. */
  readonly payload: string;
  /** WORK_DATA parts, in order (empty when dropped). */
  readonly parts: readonly string[];
  readonly numerator: number;
  readonly denominator: number;
  readonly createdAt: number;
  readonly endedAt: number;
  /** The result was over `maxResultBytes`: the job completed, its bytes were not kept. */
  readonly dropped: boolean;
  /** For a batch: items in all, ended, failed. */
  readonly batch?: { readonly total: number; readonly ended: number; readonly failed: number };
}

/** Where kept results also go to survive a restart (the sqlite store); the memory is the index. */
export interface ResultPersistence {
  saved(result: StoredResult): void;
  deleted(handles: readonly string[]): void;
}

/** Bytes a result holds, overhead included, for the `maxBytes` bound. */
export function resultBytes(result: StoredResult): number {
  let bytes = 200 + result.payload.length + result.handle.length + result.unique.length + result.functionName.length;
  for (const part of result.parts) bytes += part.length + 16;
  return bytes;
}

/** Ids of results dropped by retention, remembered (boundedly) so that a fetch can say "expired" rather than "unknown". */
const MAX_TOMBSTONES = 10_000;

/**
 * The outcomes of ended jobs, by handle and by unique id, bounded by age, count and bytes. Results
 * arrive in the order their jobs end, so the oldest is always first: eviction and expiry are O(1)
 * each, and one timer, armed for the oldest result, expires them (a quiet server forgets too).
 * The order is kept in queues of its own: a Map's first entry is found by skipping the entries
 * deleted before it, which made every eviction cost as much as all the evictions before it.
 */
export class StoredResults {
  private readonly byHandle = new Map<string, StoredResult>();
  /** The newest result holding each unique id. */
  private readonly byUnique = new Map<string, StoredResult>();
  /** Results oldest first; one replaced or dropped since is skipped when it comes up. */
  private readonly order = new Fifo<StoredResult>();
  /** Dropped ids, each with the number of the drop that last remembered it, and their order. */
  private readonly tombstones = new Map<string, number>();
  private readonly tombstoneOrder = new Fifo<readonly [id: string, drop: number]>();
  private drops = 0;
  private totalBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly retention: ResultRetention,
    private persistence?: ResultPersistence,
    private readonly now: () => number = Date.now,
  ) {}

  get count(): number {
    return this.byHandle.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Keeps a result (replacing one with the same handle), then drops the oldest while over a bound. */
  add(result: StoredResult, options: { persist?: boolean } = {}): void {
    this.forget(result.handle);
    this.byHandle.set(result.handle, result);
    this.order.push(result);
    if (result.unique !== '') this.byUnique.set(result.unique, result);
    this.totalBytes += resultBytes(result);
    if (options.persist !== false) this.persistence?.saved(result);
    const dropped: string[] = [];
    while (this.byHandle.size > this.retention.maxCount || this.totalBytes > this.retention.maxBytes) {
      dropped.push(this.dropOldest());
    }
    if (dropped.length > 0) this.persistence?.deleted(dropped);
    // A timer armed is armed for the oldest result, or for one dropped since, which re-arms it.
    if (!this.timer) this.expire();
  }

  /**
   * From now on, results also go to `persistence`; `kept` (what it held, oldest end first) are put
   * back first, retention applying to them as to any (what is past its age goes at once).
   */
  persistTo(persistence: ResultPersistence, kept: Iterable<StoredResult> = []): void {
    this.persistence = persistence;
    for (const result of kept) this.add(result, { persist: false });
    this.expire();
  }

  /** The result under a handle, or else the newest under a unique id. */
  find(id: string): StoredResult | undefined {
    return this.byHandle.get(id) ?? this.byUnique.get(id);
  }

  /** Whether the id named a result that retention dropped (remembered for the last 10,000 dropped). */
  wasDropped(id: string): boolean {
    return this.tombstones.has(id);
  }

  /** Every kept result, oldest first. */
  values(): IterableIterator<StoredResult> {
    return this.byHandle.values();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Drops what is past its age, and arms the timer for the next one. */
  private expire(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    const now = this.now();
    const dropped: string[] = [];
    for (let oldest = this.oldest(); oldest; oldest = this.oldest()) {
      const dueAt = oldest.endedAt + this.retention.maxAgeMs;
      if (dueAt > now) {
        this.timer = setTimeout(() => this.expire(), Math.min(dueAt - now, 2 ** 31 - 1));
        this.timer.unref?.();
        break;
      }
      dropped.push(this.dropOldest());
    }
    if (dropped.length > 0) this.persistence?.deleted(dropped);
  }

  /** The oldest result kept, skipping the queue's entries for results replaced or dropped since. */
  private oldest(): StoredResult | undefined {
    for (let first = this.order.peek(); first; first = this.order.peek()) {
      if (this.byHandle.get(first.handle) === first) return first;
      this.order.shift();
    }
    return undefined;
  }

  private dropOldest(): string {
    const oldest = this.oldest()!;
    this.order.shift();
    this.forget(oldest.handle);
    this.remember(oldest.handle);
    if (oldest.unique !== '') this.remember(oldest.unique);
    return oldest.handle;
  }

  private forget(handle: string): void {
    const result = this.byHandle.get(handle);
    if (!result) return;
    this.byHandle.delete(handle);
    if (this.byUnique.get(result.unique) === result) this.byUnique.delete(result.unique);
    this.totalBytes -= resultBytes(result);
  }

  private remember(id: string): void {
    const drop = ++this.drops;
    this.tombstones.set(id, drop);
    this.tombstoneOrder.push([id, drop]);
    while (this.tombstones.size > MAX_TOMBSTONES) {
      const [oldestId, oldestDrop] = this.tombstoneOrder.shift()!;
      // Remembered again since: a later entry of the queue stands for it.
      if (this.tombstones.get(oldestId) === oldestDrop) this.tombstones.delete(oldestId);
    }
    // Ids remembered again and again leave stale entries behind: keep the queue within twice the bound.
    if (this.tombstoneOrder.length > 2 * MAX_TOMBSTONES) {
      this.tombstoneOrder.takeAll();
      for (const entry of [...this.tombstones].sort((a, b) => a[1] - b[1])) this.tombstoneOrder.push(entry);
    }
  }
}
