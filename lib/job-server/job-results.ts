import type { BrokerPeer } from './broker-peer.js';
import { retryOrigin, type RetryOrigin } from '../protocol/retry-origin.js';
import type { JobBroker } from './job-broker.js';
import type { JobEnd, JobLifecycle, JobView, WorkUpdate } from './job-lifecycle.js';
import type { JobPersistence } from './sqlite-results.js';
import { StoredResults, type ResultPersistence, type ResultRetention, type StoredResult } from './stored-results.js';

/** A background job still in the server, as its outcome is being put together. */
interface LiveJob {
  readonly createdAt: number;
  readonly parts: Buffer[];
  partBytes: number;
  /** Its WORK_DATA went over `maxResultBytes`: nothing of it will be kept. */
  dropped: boolean;
}

/** Someone following a job (a fetch that waits): told of its updates and of its end. */
export interface JobListener {
  update(update: WorkUpdate): void;
  /** The job ended (its outcome is stored when it was a background job) or it was put back in its queue. */
  ended(): void;
}

/** What the server knows of a job right now. Handles and unique ids are byte strings (latin1). */
export type JobState =
  | {
      readonly kind: 'live';
      readonly handle: string;
      readonly unique: string;
      readonly functionName: string;
      readonly running: boolean;
      readonly numerator: number;
      readonly denominator: number;
      readonly createdAt: number | undefined;
      /** WORK_DATA parts sent so far (background jobs; empty for a foreground job). */
      readonly parts: readonly Buffer[];
      readonly batch?: { readonly total: number; readonly ended: number; readonly failed: number };
    }
  | { readonly kind: 'stored'; readonly result: StoredResult }
  | { readonly kind: 'unknown'; readonly reason: 'not-found' | 'expired' };

/** A batch as JobResults sees it: the coordinator answers for it while it runs. */
export interface LiveBatches {
  stateOf(id: string): JobState | undefined;
  /** Whether a job is an item (or the gather job) of a running batch: the batch keeps its outcome. */
  owns(handle: string): boolean;
  /** Whether a job is a later attempt (a Nest worker's retry) of such a job. */
  ownsAttempt(job: JobView): boolean;
}

/**
 * The results side of the job server: it follows every job through the broker's lifecycle, keeps
 * the outcome of each background job once it ends (its result with its WORK_DATA parts, or its
 * failure, its last progress, when it ended) in StoredResults, tells what it knows of any job, and
 * lets a fetch follow a job to its end.
 */
export class JobResults implements JobLifecycle {
  readonly stored: StoredResults;
  private readonly live = new Map<string, LiveJob>();
  private readonly listeners = new Map<string, Set<JobListener>>();
  private batches: LiveBatches | undefined;
  /**
   * Retried jobs whose chain still runs: the first attempt's unique id and handle → the handle of
   * the latest attempt. An attempt is queued before the one it replaces ends (see the Nest retries).
   */
  private readonly latestAttempt = new Map<string, string>();
  /** Attempts after the first, by handle → the first attempt's unique id and handle. */
  private readonly originOf = new Map<string, RetryOrigin>();
  /** Where the handles of queued background jobs go (the sqlite store), when they outlive a restart. */
  private persistence: JobPersistence | undefined;

  constructor(
    private readonly broker: () => JobBroker,
    private readonly retention: ResultRetention,
    stored?: StoredResults,
  ) {
    this.stored = stored ?? new StoredResults(retention);
  }

  /** The batch coordinator, which answers for the batches it runs. */
  attachBatches(batches: LiveBatches): void {
    this.batches = batches;
  }

  // --- Lifecycle ---------------------------------------------------------------------------

  accepted(job: JobView): void {
    if (!job.background || this.batches?.owns(job.handle) || this.batches?.ownsAttempt(job)) return;
    // Nothing is held for a queued job: the broker's job tells its state until it starts.
    this.persistence?.jobAccepted(job.id, job.handle, job.unique, job.functionName, job.createdAt);
    this.followAttempt(job.handle, job.data);
  }

  /**
   * A background job a durable store put back at start (not a batch's), under a new `handle`:
   * followed as if accepted. `before` is what was kept of it (the sqlite store): the handle its
   * submitter holds, which leads to it from now on (and to its outcome once it ends, as a retried
   * job's first handle does), and when its submit was accepted.
   */
  restored(handle: string, data: string, before?: { readonly handle: string; readonly unique: string; readonly createdAt: number }): void {
    this.track(handle, before?.createdAt ?? Date.now());
    // A later attempt is followed from its first handle, which its envelope names.
    if (this.followAttempt(handle, data) || !before || before.handle === handle) return;
    this.originOf.set(handle, { handle: before.handle, unique: before.unique, attempt: 1 });
    this.latestAttempt.set(before.handle, handle);
  }

  /**
   * From now on, kept results and the handles of queued background jobs also go to `persistence`
   * (the sqlite store); `kept` are the results it held, oldest first.
   */
  persistTo(persistence: ResultPersistence & JobPersistence, kept: Iterable<StoredResult>): void {
    this.persistence = persistence;
    this.stored.persistTo(persistence, kept);
  }

  /** A later attempt of a retried job: its first handle and unique id lead to it from now on. False for a first attempt. */
  private followAttempt(handle: string, data: string): boolean {
    const origin = retryOrigin(data);
    if (!origin) return false;
    this.originOf.set(handle, origin);
    this.latestAttempt.set(origin.unique, handle);
    this.latestAttempt.set(origin.handle, handle);
    return true;
  }

  joined(job: JobView, background: boolean): void {
    if (background) this.track(job.handle, job.createdAt);
  }

  started(job: JobView, _worker: BrokerPeer): void {
    // A job a durable store put back was never `accepted` here.
    if (job.background) this.track(job.handle, job.createdAt);
  }

  progressed(job: JobView, update: WorkUpdate): void {
    const live = this.live.get(job.handle);
    if (live && update.kind === 'data' && !live.dropped) {
      live.partBytes += update.data.length;
      if (live.partBytes > this.retention.maxResultBytes) {
        live.dropped = true;
        live.parts.length = 0;
      } else {
        live.parts.push(Buffer.from(update.data)); // it may view a socket chunk
      }
    }
    this.notifyUpdate(job.handle, update);
  }

  requeued(job: JobView): void {
    // A new run starts from nothing: its parts and progress go (the broker resets the progress).
    const live = this.live.get(job.handle);
    if (live) {
      live.parts.length = 0;
      live.partBytes = 0;
      live.dropped = false;
    }
    this.notifyUpdate(job.handle, { kind: 'status', numerator: 0, denominator: 0 });
  }

  ended(job: JobView, end: JobEnd): void {
    const live = this.live.get(job.handle);
    this.live.delete(job.handle);
    if ((job.background || live) && !this.batches?.owns(job.handle)) {
      this.keep(job, end, live);
      if (job.background) this.persistence?.jobEnded(job.id);
    }
    const origin = this.originOf.get(job.handle);
    if (origin) {
      this.originOf.delete(job.handle);
      // The last attempt (no later one queued): its outcome is the job's, under its first handle and unique id too.
      if (this.latestAttempt.get(origin.handle) === job.handle) {
        if (this.latestAttempt.get(origin.unique) === job.handle) this.latestAttempt.delete(origin.unique);
        this.latestAttempt.delete(origin.handle);
        const kept = this.stored.find(job.handle);
        if (kept) this.stored.add({ ...kept, handle: origin.handle, unique: origin.unique });
        this.notifyEnded(origin.handle);
      }
    }
    this.notifyEnded(job.handle);
  }

  // --- Reading -----------------------------------------------------------------------------

  /** What is known of the job a handle or unique id names: a job still here, a stored outcome, or nothing. */
  stateOf(id: string): JobState {
    const batch = this.batches?.stateOf(id);
    if (batch) return batch;
    // A job being retried is where its latest attempt is.
    const attempt = this.latestAttempt.get(id);
    if (attempt !== undefined && attempt !== id) return this.stateOf(attempt);
    const broker = this.broker();
    const job = broker.findByHandle(id) ?? broker.findByUnique(id);
    if (job) {
      const handle = broker.handleOf(job);
      const run = job.run;
      const live = this.live.get(handle);
      return {
        kind: 'live',
        handle,
        unique: job.unique,
        functionName: job.functionName,
        running: run !== undefined,
        numerator: run?.numerator ?? 0,
        denominator: run?.denominator ?? 0,
        createdAt: live?.createdAt ?? job.createdAt,
        parts: live?.parts ?? [],
      };
    }
    const result = this.stored.find(id);
    if (result) return { kind: 'stored', result };
    return { kind: 'unknown', reason: this.stored.wasDropped(id) ? 'expired' : 'not-found' };
  }

  /** Follows the job under a handle until `unlisten`. */
  listen(handle: string, listener: JobListener): void {
    let set = this.listeners.get(handle);
    if (!set) this.listeners.set(handle, (set = new Set()));
    set.add(listener);
  }

  unlisten(handle: string, listener: JobListener): void {
    const set = this.listeners.get(handle);
    if (!set?.delete(listener)) return;
    if (set.size === 0) this.listeners.delete(handle);
  }

  /** Tells who follows the job (or the batch, for the batch coordinator) under a handle of an update. */
  notifyUpdate(handle: string, update: WorkUpdate): void {
    const listeners = this.listeners.get(handle);
    if (listeners) for (const listener of [...listeners]) listener.update(update);
  }

  /** For the batch coordinator: a batch ended (its outcome is stored). */
  notifyEnded(handle: string): void {
    const listeners = this.listeners.get(handle);
    if (!listeners) return;
    this.listeners.delete(handle);
    for (const listener of listeners) listener.ended();
  }

  close(): void {
    this.stored.close();
  }

  private track(handle: string, createdAt: number): void {
    if (!this.live.has(handle)) this.live.set(handle, { createdAt, parts: [], partBytes: 0, dropped: false });
  }

  /** Stores a background job's outcome. An abandoned job (foreground, nobody waits) leaves nothing. */
  private keep(job: JobView, end: JobEnd, live: LiveJob | undefined): void {
    const { outcome } = end;
    if (outcome.kind === 'abandoned') return;
    const payload = outcome.kind === 'complete' || outcome.kind === 'exception' ? outcome.data : EMPTY;
    const parts = live?.parts ?? [];
    const dropped = (live?.dropped ?? false) || (live?.partBytes ?? 0) + payload.length > this.retention.maxResultBytes;
    this.stored.add({
      handle: job.handle,
      unique: job.unique,
      functionName: job.functionName,
      outcome: outcome.kind === 'complete' ? 'complete' : outcome.kind === 'exception' ? 'exception' : 'fail',
      payload: dropped ? '' : payload.toString('latin1'),
      parts: dropped ? [] : parts.map((part) => part.toString('latin1')),
      numerator: end.numerator,
      denominator: end.denominator,
      createdAt: live?.createdAt ?? job.createdAt,
      endedAt: end.endedAt,
      dropped,
    });
  }
}

const EMPTY = Buffer.alloc(0);
