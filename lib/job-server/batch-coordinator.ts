import { randomUUID } from 'node:crypto';
import {
  batchItemUnique,
  BatchRequestError,
  decodeBatchRequest,
  encodeBatchOutcomes,
  MAX_BATCH_UNIQUE_BYTES,
  type BatchItemOutcome,
  type BatchRequest,
} from '../protocol/batch.js';
import type { BatchRow } from '../protocol/admin.js';
import { encodeByteStringResponse } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import type { BrokerPeer } from './broker-peer.js';
import { Priority } from './job.js';
import type { JobBroker, SubmitRequest } from './job-broker.js';
import type { JobEnd, JobLifecycle, JobOutcome, JobView } from './job-lifecycle.js';
import type { JobResults, JobState } from './job-results.js';
import type { BatchPersistence, PersistedBatch } from './sqlite-results.js';
import { retryOrigin } from '../protocol/retry-origin.js';

/** A batch while it runs. Item payloads are byte strings (latin1), dropped once submitted. */
interface Batch {
  readonly handle: string;
  readonly unique: string;
  readonly request: BatchRequest;
  /** Payloads of the items not submitted yet. */
  readonly items: (string | undefined)[];
  outcomes: (BatchItemOutcome | undefined)[];
  readonly createdAt: number;
  /** Items to submit, in order, from `queueHead` on. */
  readonly queue: number[];
  queueHead: number;
  inFlight: number;
  ended: number;
  failed: number;
  /** Item (and gather) jobs submitted and not ended, by handle. */
  readonly jobs: Set<string>;
  gathering: boolean;
}

const PRIORITIES = { high: Priority.HIGH, normal: Priority.NORMAL, low: Priority.LOW } as const;

/** A job's end as a batch counts it. */
function itemOutcome(outcome: JobOutcome, handle: string): BatchItemOutcome {
  switch (outcome.kind) {
    case 'complete':
      return { kind: 'complete', data: Buffer.from(outcome.data) };
    case 'exception':
      return { kind: 'exception', data: Buffer.from(outcome.data) };
    case 'retries-exhausted':
      return { kind: 'fail', reason: `Job ${handle} was dropped: its workers were lost too many times` };
    case 'cancelled':
      return { kind: 'fail', reason: `Job ${handle} was cancelled` };
    default:
      return { kind: 'fail', reason: `Job ${handle} failed` };
  }
}

/**
 * Background batches coordinated by the job server (`gearman.batch`): the caller submits one
 * background job carrying every item and may leave at once. The server submits the items as
 * background jobs of the batch's function (`<batch>/<index>`, at most `concurrency` at a time),
 * counts their outcomes as they end (a job whose worker dies goes back to its queue as any job
 * does), fails the batch at the first failure under `failFast` (cancelling the items still queued),
 * and once all have ended submits the gather job with the ordered outcomes (or ends the batch with
 * them). The batch's outcome is stored like a job's, under its handle and unique id.
 */
export class BatchCoordinator implements JobLifecycle {
  private readonly byHandle = new Map<string, Batch>();
  private readonly byUnique = new Map<string, Batch>();
  /** Item and gather jobs by handle. */
  private readonly jobs = new Map<string, { batch: Batch; index: number | 'gather' }>();
  /** Item and gather jobs by unique id (`<batch>/<index>`) → the handle of their latest attempt. */
  private readonly attempts = new Map<string, string>();
  /** Attempts a later one replaced, until they end (with the WORK_FAIL that is not their item's). */
  private readonly superseded = new Set<string>();
  /** True while submitting an item or gather job (its `accepted` hook runs then). */
  private submitting = false;
  /** Where batches go to outlive a restart (the sqlite store). */
  private persistence: (BatchPersistence & { flush(): void }) | undefined;

  constructor(
    private readonly broker: () => JobBroker,
    private readonly results: JobResults,
  ) {}

  /** Batches running now. */
  get running(): number {
    return this.byHandle.size;
  }

  /** The running batches, oldest first, at most `limit` of them: what `show batches` lists. */
  summaries(limit: number): BatchRow[] {
    const summaries: BatchRow[] = [];
    for (const batch of this.byHandle.values()) {
      if (summaries.length >= limit) break;
      const { handle, ended, failed, gathering } = batch;
      summaries.push({ handle, functionName: batch.request.function, ended, total: batch.items.length, failed, gathering });
    }
    return summaries;
  }

  /** A `gearman.batch` background submit: the batch starts, its submitter gets its handle (or ERROR INVALID_BATCH). */
  submit(peer: BrokerPeer, request: SubmitRequest): void {
    let decoded: { request: BatchRequest; items: Buffer[] };
    try {
      decoded = decodeBatchRequest(Buffer.from(request.data, 'latin1'));
      if (request.unique.length > MAX_BATCH_UNIQUE_BYTES) {
        throw new BatchRequestError(`A batch's unique id is at most ${MAX_BATCH_UNIQUE_BYTES} bytes`);
      }
    } catch (error) {
      if (!(error instanceof BatchRequestError)) throw error;
      peer.send(encodeByteStringResponse(PacketType.ERROR, ['INVALID_BATCH', error.message]));
      return;
    }
    const unique = request.unique === '' ? randomUUID() : request.unique;
    // The same batch submitted again while it runs is the same batch (as a unique id coalesces jobs).
    const batch = this.byUnique.get(unique) ?? this.start(unique, decoded.request, decoded.items);
    // On disk before its submitter hears of it.
    this.persistence?.flush();
    peer.send(encodeByteStringResponse(PacketType.JOB_CREATED, [batch.handle]));
  }

  /** A running batch's state, for a fetch; undefined when the id names no running batch. */
  stateOf(id: string): JobState | undefined {
    const batch = this.byHandle.get(id) ?? this.byUnique.get(id);
    if (!batch) return undefined;
    return {
      kind: 'live',
      handle: batch.handle,
      unique: batch.unique,
      functionName: batch.request.function,
      running: batch.ended > 0 || batch.inFlight > 0,
      numerator: batch.ended,
      denominator: batch.items.length,
      createdAt: batch.createdAt,
      parts: [],
      batch: { total: batch.items.length, ended: batch.ended, failed: batch.failed },
    };
  }

  owns(handle: string): boolean {
    return this.jobs.has(handle) || this.superseded.has(handle);
  }

  /**
   * For the `accepted` hook of a new job: whether the batch owns it, being an item or gather job
   * it is submitting now, or a later attempt of one (a Nest worker's retry).
   */
  ownsAttempt(job: JobView): boolean {
    if (this.submitting) return true;
    const origin = retryOrigin(job.data);
    return origin !== undefined && this.attempts.has(origin.unique);
  }

  /**
   * Lifecycle: a job was submitted. A later attempt of an item (a Nest worker retrying it, see
   * ServerGearman) takes the item's place: the attempt it replaces ends with WORK_FAIL once this
   * one is queued, and that failure is not the item's.
   */
  accepted(job: JobView): void {
    const origin = retryOrigin(job.data);
    if (!origin) return;
    const current = this.attempts.get(origin.unique);
    const entry = current === undefined ? undefined : this.jobs.get(current);
    if (!entry) return;
    this.jobs.delete(current!);
    entry.batch.jobs.delete(current!);
    this.superseded.add(current!);
    this.jobs.set(job.handle, entry);
    entry.batch.jobs.add(job.handle);
    this.attempts.set(origin.unique, job.handle);
  }

  /** Cancels a running batch: its queued jobs are cancelled, it fails. False when no batch by that id runs. */
  cancel(id: string): boolean {
    const batch = this.byHandle.get(id) ?? this.byUnique.get(id);
    if (!batch) return false;
    this.fail(batch, { kind: 'fail', reason: `Batch ${batch.handle} was cancelled` });
    return true;
  }

  /**
   * From now on, batches also go to `persistence` (the sqlite store). `kept` are the batches it
   * held when the server stopped; `restored` the background jobs the durable queue put back (their
   * new handles). Each batch goes on: its items with a job (or a later attempt of one) queued wait
   * for it, the others not ended yet are submitted again; when every item had ended, its gather job
   * (found, or submitted again) or its end follows.
   */
  persistTo(
    persistence: BatchPersistence & { flush(): void },
    kept: readonly PersistedBatch[] = [],
    restored: readonly { handle: string; unique: string; data: string }[] = [],
  ): void {
    this.persistence = persistence;
    if (kept.length === 0) return;
    // Each item's latest attempt among the restored jobs, by the item's unique id.
    const latest = new Map<string, { handle: string; attempt: number; others: string[] }>();
    for (const job of restored) {
      const origin = retryOrigin(job.data);
      const unique = origin?.unique ?? job.unique;
      const attempt = origin?.attempt ?? 1;
      const seen = latest.get(unique);
      if (!seen) latest.set(unique, { handle: job.handle, attempt, others: [] });
      else if (attempt > seen.attempt) latest.set(unique, { handle: job.handle, attempt, others: [...seen.others, seen.handle] });
      else seen.others.push(job.handle);
    }
    for (const saved of kept) this.resume(saved, latest);
    // Items and gather jobs of batches that had ended: back only because their deletes had not
    // reached the file; the batch's outcome is kept, so they do not run again.
    for (const unique of [...latest.keys()]) {
      const slash = unique.lastIndexOf('/');
      if (slash > 0 && this.results.stored.find(unique.slice(0, slash))?.batch) this.drop(unique, latest);
    }
  }

  /** Cancels the restored jobs of a batch item that has its outcome already, unseen by results and batches. */
  private drop(unique: string, latest: Map<string, { handle: string; others: string[] }>): void {
    const found = latest.get(unique);
    if (!found) return;
    latest.delete(unique);
    for (const handle of [found.handle, ...found.others]) {
      this.superseded.add(handle);
      if (!this.broker().cancel(handle)) this.superseded.delete(handle);
    }
  }

  /** A batch with nothing in flight and nothing ended yet, known by its handle and unique id from now on. */
  private register(
    handle: string,
    unique: string,
    request: BatchRequest,
    items: (string | undefined)[],
    queue: number[],
    createdAt: number,
  ): Batch {
    const batch: Batch = {
      handle,
      unique,
      request,
      items,
      outcomes: new Array<BatchItemOutcome | undefined>(items.length),
      createdAt,
      queue,
      queueHead: 0,
      inFlight: 0,
      ended: 0,
      failed: 0,
      jobs: new Set(),
      gathering: false,
    };
    this.byHandle.set(handle, batch);
    this.byUnique.set(unique, batch);
    return batch;
  }

  private resume(saved: PersistedBatch, latest: Map<string, { handle: string; attempt: number; others: string[] }>): void {
    const request = JSON.parse(saved.request) as BatchRequest;
    const batch = this.register(saved.handle, saved.unique, request, new Array<string | undefined>(saved.total), [], saved.createdAt);
    for (const { index, outcome } of saved.ended) {
      batch.outcomes[index] = outcome;
      batch.ended++;
      if (outcome.kind !== 'complete') batch.failed++;
      // Its job may be back too (its delete had not reached the file before a crash): it does not run again.
      this.drop(batchItemUnique(batch.unique, index), latest);
    }
    const link = (unique: string, index: number | 'gather'): boolean => {
      const found = latest.get(unique);
      if (!found) return false;
      for (const other of found.others) this.superseded.add(other);
      this.jobs.set(found.handle, { batch, index });
      batch.jobs.add(found.handle);
      this.attempts.set(unique, found.handle);
      return true;
    };
    for (const { index, data } of saved.pending) {
      if (link(batchItemUnique(batch.unique, index), index)) {
        batch.inFlight++;
      } else {
        batch.items[index] = data;
        batch.queue.push(index);
      }
    }
    if (batch.ended < saved.total) return this.pump(batch);
    if (batch.request.gather !== undefined && link(batchItemUnique(batch.unique, 'gather'), 'gather')) {
      batch.gathering = true;
      batch.outcomes = [];
      return;
    }
    this.allEnded(batch);
  }

  /** Lifecycle: an item or gather job ended. */
  ended(job: JobView, end: JobEnd): void {
    if (this.superseded.delete(job.handle)) return;
    const entry = this.jobs.get(job.handle);
    if (!entry) return;
    this.jobs.delete(job.handle);
    this.attempts.delete(batchItemUnique(entry.batch.unique, entry.index));
    const { batch, index } = entry;
    batch.jobs.delete(job.handle);
    if (!this.byHandle.has(batch.handle)) return; // the batch ended before this job did
    const outcome = itemOutcome(end.outcome, job.handle);
    if (index === 'gather') return this.finish(batch, outcome);
    this.itemEnded(batch, index, outcome);
  }

  private start(unique: string, request: BatchRequest, items: Buffer[]): Batch {
    const batch = this.register(
      // A handle as a job's (unguessable unless the server's handles are sequential): only who was given it reads the batch.
      this.broker().newHandle(),
      unique,
      request,
      items.map((item) => item.toString('latin1')),
      Array.from(items, (_, index) => index),
      Date.now(),
    );
    this.persistence?.batchStarted(batch.handle, unique, JSON.stringify(request), batch.items.slice() as string[], batch.createdAt);
    if (items.length === 0) this.allEnded(batch);
    else this.pump(batch);
    return batch;
  }

  /** Submits items while the batch's concurrency allows. */
  private pump(batch: Batch): void {
    const limit = batch.request.concurrency ?? Infinity;
    while (batch.queueHead < batch.queue.length && batch.inFlight < limit && this.byHandle.has(batch.handle)) {
      const index = batch.queue[batch.queueHead++];
      const data = batch.items[index]!;
      batch.items[index] = undefined;
      batch.inFlight++;
      const handle = this.submitJob(batch, batch.request.function, batchItemUnique(batch.unique, index), data);
      if (handle === undefined) {
        this.itemEnded(batch, index, { kind: 'fail', reason: `The queue of ${batch.request.function} is full` });
        continue;
      }
      this.jobs.set(handle, { batch, index });
    }
  }

  private submitJob(batch: Batch, functionName: string, unique: string, data: string): string | undefined {
    this.submitting = true;
    let submitted: ReturnType<JobBroker['submitInternal']>;
    try {
      submitted = this.broker().submitInternal({
        functionName,
        unique,
        data,
        priority: PRIORITIES[batch.request.priority ?? 'normal'],
      });
    } finally {
      this.submitting = false;
    }
    if (!submitted) return undefined;
    batch.jobs.add(submitted.handle);
    this.attempts.set(unique, submitted.handle);
    return submitted.handle;
  }

  private itemEnded(batch: Batch, index: number, outcome: BatchItemOutcome): void {
    if (batch.outcomes[index]) return;
    batch.outcomes[index] = outcome;
    this.persistence?.itemEnded(batch.handle, index, outcome);
    batch.inFlight--;
    batch.ended++;
    if (outcome.kind !== 'complete') batch.failed++;
    this.results.notifyUpdate(batch.handle, { kind: 'status', numerator: batch.ended, denominator: batch.items.length });
    if (outcome.kind !== 'complete' && batch.request.failFast) return this.fail(batch, outcome);
    if (batch.ended === batch.items.length) return this.allEnded(batch);
    this.pump(batch);
  }

  /** Every item ended: the gather job gets the ordered outcomes, or the batch ends with them. */
  private allEnded(batch: Batch): void {
    const gathered = encodeBatchOutcomes(batch.outcomes as BatchItemOutcome[]);
    batch.outcomes = []; // handed on: the gather job (or the stored result) holds them now
    const gather = batch.request.gather;
    if (gather === undefined) return this.finish(batch, { kind: 'complete', data: gathered });
    batch.gathering = true;
    const handle = this.submitJob(batch, gather, batchItemUnique(batch.unique, 'gather'), gathered.toString('latin1'));
    if (handle === undefined) return this.finish(batch, { kind: 'fail', reason: `The queue of ${gather} is full` });
    this.jobs.set(handle, { batch, index: 'gather' });
  }

  /** Ends the batch as failed: its jobs still queued are cancelled (those running finish, unused). */
  private fail(batch: Batch, outcome: BatchItemOutcome): void {
    const pending = [...batch.jobs];
    // Ended first, so that the cancellations below (each an `ended` of its own) find no batch to count in.
    this.finish(batch, outcome);
    const broker = this.broker();
    for (const handle of pending) {
      // Still the batch's, so that no outcome of theirs is kept on its own: cancelled now, or ending unused.
      this.superseded.add(handle);
      const job = broker.findByHandle(handle);
      if (!job) this.superseded.delete(handle);
      else if (!job.run) broker.cancel(handle);
    }
  }

  private finish(batch: Batch, outcome: BatchItemOutcome): void {
    if (!this.byHandle.delete(batch.handle)) return;
    this.byUnique.delete(batch.unique);
    this.persistence?.batchEnded(batch.handle);
    for (const handle of batch.jobs) {
      const entry = this.jobs.get(handle);
      this.jobs.delete(handle);
      if (entry) this.attempts.delete(batchItemUnique(batch.unique, entry.index));
    }
    batch.jobs.clear();
    this.results.stored.add({
      handle: batch.handle,
      unique: batch.unique,
      functionName: batch.request.function,
      outcome: outcome.kind,
      payload: outcome.kind === 'fail' ? '' : outcome.data.toString('latin1'),
      parts: [],
      numerator: batch.ended,
      denominator: batch.items.length,
      createdAt: batch.createdAt,
      endedAt: Date.now(),
      dropped: false,
      batch: { total: batch.items.length, ended: batch.ended, failed: batch.failed },
    });
    this.results.notifyEnded(batch.handle);
  }
}
