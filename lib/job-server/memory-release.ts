import type { Session } from 'node:inspector';
import { getHeapStatistics } from 'node:v8';

/** What the release watches: the broker's job counts and V8's committed heap. */
export interface MemoryReleaseProbe {
  /** Jobs the server holds now (queued, delayed or running). */
  jobs(): number;
  /** Jobs created since the server started; never decreases. */
  jobsCreated(): number;
  /** Bytes of heap V8 holds from the operating system (`total_heap_size`). */
  committedHeap(): number;
}

export interface MemoryReleaseThresholds {
  /** How often the counts are read, ms. */
  readonly checkEveryMs: number;
  /** Jobs that must have left since the queue's peak (and at least half of them) for a queue to count as drained. */
  readonly minDrainedJobs: number;
  /** Growth of V8's committed heap since the last release (or the start) that makes a release worth its pause. */
  readonly minHeapGrowthBytes: number;
  /** Jobs created plus jobs ended within one check above which the server is busy, not idle. */
  readonly maxChangesWhenIdle: number;
}

export const DEFAULT_MEMORY_RELEASE: MemoryReleaseThresholds = {
  checkEveryMs: 1000,
  minDrainedJobs: 1000,
  minHeapGrowthBytes: 64 * 1024 * 1024,
  maxChangesWhenIdle: 100,
};

/**
 * Gives the memory of a large queue back to the operating system once the queue has drained and
 * the server has gone idle. V8 keeps the pages its heap grew into until a memory-reducing garbage
 * collection, and it starts one on its own only once its allocation rate, averaged over its last
 * collections, looks low: after a burst of a million jobs that takes from half a minute to several
 * minutes of idling, during which the drained queue's pages stay resident. So when the job count
 * has fallen to at most half of its peak (by at least `minDrainedJobs`), V8's committed heap is at
 * least `minHeapGrowthBytes` above where it was after the last release, and one check found
 * almost nothing happening, `release` runs once: a collection that pauses the process for tens of
 * milliseconds. A new peak has to build up before it runs again.
 */
export class MemoryRelease {
  private timer: NodeJS.Timeout | undefined;
  private peakJobs = 0;
  /** Jobs ended since the last release (or the start), read from the created counter. */
  private endedSinceRebase = 0;
  private lastJobs = 0;
  private lastCreated = 0;
  private baselineHeap = 0;
  private releasing = false;

  constructor(
    private readonly probe: MemoryReleaseProbe,
    /** Runs the collection; resolves when it is done. */
    private readonly release: () => Promise<void>,
    private readonly thresholds: MemoryReleaseThresholds = DEFAULT_MEMORY_RELEASE,
  ) {}

  start(): void {
    if (this.timer) return;
    this.rebase();
    this.lastCreated = this.probe.jobsCreated();
    this.timer = setInterval(() => this.check(), this.thresholds.checkEveryMs);
    // Never the reason the process stays up.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const jobs = this.probe.jobs();
    const created = this.probe.jobsCreated();
    const newJobs = created - this.lastCreated;
    const endedJobs = newJobs - (jobs - this.lastJobs);
    this.lastJobs = jobs;
    this.lastCreated = created;
    this.endedSinceRebase += endedJobs;
    if (jobs > this.peakJobs) this.peakJobs = jobs;
    if (this.releasing || newJobs + endedJobs > this.thresholds.maxChangesWhenIdle) return;
    // A burst may fill and drain the queue between two checks: the jobs that ended stand for a
    // peak no check saw.
    const peak = Math.max(this.peakJobs, this.endedSinceRebase);
    if (this.endedSinceRebase < this.thresholds.minDrainedJobs || jobs * 2 > peak) return;
    if (this.probe.committedHeap() - this.baselineHeap < this.thresholds.minHeapGrowthBytes) return;
    this.releasing = true;
    void this.release()
      .catch(() => undefined)
      .then(() => {
        this.releasing = false;
        this.rebase();
      });
  }

  /** A new starting point: the peak is what is here now, the heap as it is now. */
  private rebase(): void {
    this.lastJobs = this.probe.jobs();
    this.peakJobs = this.lastJobs;
    this.endedSinceRebase = 0;
    this.baselineHeap = this.probe.committedHeap();
  }
}

/** V8's committed heap, as MemoryReleaseProbe.committedHeap reads it. */
export function committedHeapBytes(): number {
  return getHeapStatistics().total_heap_size;
}

/**
 * Runs the garbage collection V8 makes when the system is short of memory: everything unreachable,
 * with compaction, its young generation shrunk, the freed pages given back to the operating system
 * at once (what `isolate->LowMemoryNotification()` does). Node reaches it only through the
 * inspector protocol's `HeapProfiler.collectGarbage`, here on a session inside this process (no
 * port, no flag). A plain `global.gc()` (with `--expose-gc`) is no substitute: it leaves V8's
 * young generation at its grown size, and once it has run V8's own memory reducer no longer starts.
 * Resolves with the milliseconds the collection took, or undefined on a Node built without an
 * inspector.
 */
export async function collectGarbageReducingMemory(): Promise<number | undefined> {
  let InspectorSession: typeof Session;
  try {
    ({ Session: InspectorSession } = await import('node:inspector'));
  } catch {
    return undefined;
  }
  const session = new InspectorSession();
  session.connect();
  const started = performance.now();
  try {
    await new Promise<void>((resolve, reject) =>
      session.post('HeapProfiler.collectGarbage', (error) => (error ? reject(error) : resolve())),
    );
    return performance.now() - started;
  } finally {
    // Disconnecting from within the session's own callback stalls Node 20's event loop: a turn later.
    setImmediate(() => session.disconnect());
  }
}
