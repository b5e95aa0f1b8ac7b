import { BATCH_FUNCTION, batchItemUnique, decodeBatchRequest, encodeBatchOutcomes, type BatchItemOutcome } from '../protocol/batch.js';
import type { GearmanLogger } from '../common/logger.js';
import type { WorkerJob, WorkerJobEnd } from '../worker/worker-job.js';
import type { RedisKeyspace, ScriptName } from './redis-scripts.js';
import type { BatchSubmitter } from './result-store.js';

/** What the batch coordination needs of the store: its scripts, a read, its keys and retention. */
export interface RedisBatchAccess {
  readonly keys: RedisKeyspace;
  readonly ttlMs: number;
  readonly pendingTtlMs: number;
  readonly logger: GearmanLogger;
  run(script: ScriptName, keys: string[], args: (string | number | Buffer)[]): Promise<unknown>;
  /** HGET of fields of a hash, and HEXISTS of one field of another, in one round trip. */
  peek(hash: string, fields: string[], other?: { hash: string; field: string }): Promise<{ values: (string | null)[]; exists: boolean }>;
  /** Every field of a hash, as Buffers. */
  hashOf(key: string): Promise<Record<string, Buffer>>;
}

/** An item job's unique id read back: its batch and index, or the batch's gather job. */
function parseItemUnique(unique: string): { batch: string; index: number | 'gather' } | undefined {
  const slash = unique.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const tail = unique.slice(slash + 1);
  if (tail === 'gather') return { batch: unique.slice(0, slash), index: 'gather' };
  if (!/^(0|[1-9]\d{0,9})$/.test(tail)) return undefined;
  return { batch: unique.slice(0, slash), index: Number(tail) };
}

const OUTCOME_TAG = { complete: 'c', exception: 'e', fail: 'f' } as const;

/**
 * Background batches on gearmand, coordinated by the workers through Redis (gearmand keeps nothing).
 *
 * - The caller submits one background job of `gearman.batch` (unique id: the batch's); any worker
 *   with the store takes it, records the batch and submits every item as a background job
 *   `<batch>/<index>`, then completes. The caller may exit at once: the batch lives in Redis and
 *   gearmand's queues.
 * - Each item's first outcome is counted in one script; with `failFast` the first failure ends the
 *   batch as failed; when the last item ends, the worker that ended it submits the gather job
 *   `<batch>/gather` (or, without one, ends the batch with the ordered outcomes), all before its
 *   item's WORK_COMPLETE goes out.
 * - A worker that dies mid-item: gearmand hands the item to another worker (its first outcome
 *   counts once). One that dies after counting but before submitting the gather: its item runs
 *   again (gearmand requeued it), finds its outcome counted and the gather not submitted, and
 *   submits it. A coordinator that dies mid-submission runs again and submits again: items still
 *   queued coalesce on their unique id, items already ended are skipped, as are the items of a
 *   batch that failed or was cancelled.
 */
export class RedisBatches {
  constructor(private readonly store: RedisBatchAccess) {}

  /** Whether a job is the batch coordinator, which is not recorded as a job of its own. */
  isCoordinator(job: WorkerJob): boolean {
    return job.functionName === BATCH_FUNCTION;
  }

  /** Runs a `gearman.batch` job: records the batch and submits its items. Throws on a malformed batch. */
  async start(job: WorkerJob, submitter: BatchSubmitter): Promise<void> {
    const { request, items } = decodeBatchRequest(job.data);
    const batch = job.unique;
    const { keys, pendingTtlMs } = this.store;
    const started = await this.store.run(
      'BATCH_START',
      [keys.job(batch), keys.handle(job.handle)],
      [
        job.handle,
        request.function,
        Date.now(),
        items.length,
        request.failFast ? '1' : '0',
        request.gather ?? '',
        pendingTtlMs,
        batch,
        keys.channel(batch),
      ],
    );
    if (started !== 1) return; // ended already: a coordinator run again after the batch was over
    if (items.length === 0) return this.finish(batch, 0, submitter, request.gather ?? '', request.priority);
    const ended = new Set(Object.keys(await this.store.hashOf(keys.outcomes(batch))).map(Number));
    await Promise.all(
      items.map((item, index) =>
        ended.has(index)
          ? undefined
          : submitter.submitBackground(request.function, item, { unique: batchItemUnique(batch, index), priority: request.priority }),
      ),
    );
  }

  /** Whether an item (or gather) job (by its unique id, the first attempt's for a retry) should still run: its batch runs and, for an item, it has not ended before. */
  async shouldRun(unique: string): Promise<boolean> {
    const item = parseItemUnique(unique);
    if (!item) return true;
    const { keys } = this.store;
    const { values, exists } = await this.store.peek(
      keys.job(item.batch),
      ['batch', 'state'],
      item.index === 'gather' ? undefined : { hash: keys.outcomes(item.batch), field: String(item.index) },
    );
    if (values[0] !== '1') return true; // a unique id that only looks like an item's
    return values[1] === 'running' && !exists;
  }

  /**
   * An item or gather job (by unique id, as shouldRun) ended (after its own record): counts it, and ends or gathers the batch
   * when that is due. False when the job belongs to no batch.
   */
  async ended(unique: string, outcome: WorkerJobEnd, submitter: BatchSubmitter | undefined): Promise<boolean> {
    const item = parseItemUnique(unique);
    if (!item) return false;
    const { keys } = this.store;
    if (item.index === 'gather') {
      const ended = await this.endBatch(item.batch, outcome);
      return ended !== -1;
    }
    const tagged = Buffer.concat([Buffer.from(OUTCOME_TAG[outcome.type]), outcome.type === 'fail' ? EMPTY : outcome.data]);
    const reply = (await this.store.run(
      'ITEM_ENDED',
      [keys.job(item.batch), keys.outcomes(item.batch)],
      [item.index, tagged, this.store.pendingTtlMs, keys.channel(item.batch)],
    )) as [number, number?, number?, number?, string?, string?, string?, string?];
    const [counted, ended = 0, total = 0, , state, failFast, gather = '', gatherSubmitted] = reply;
    if (counted === -1) return false;
    if (state !== 'running') return true;
    if (counted === 1 && failFast === '1' && outcome.type !== 'complete') {
      await this.endBatch(item.batch, outcome);
      return true;
    }
    if (ended >= total && gatherSubmitted !== '1') {
      if (!submitter) this.store.logger.error(`batch ${item.batch}: its last item ended on a worker that cannot submit jobs`);
      else await this.finish(item.batch, total, submitter, gather);
    }
    return true;
  }

  /** Cancels a queued or running batch: it fails, and its items not started yet will not run. False when it had ended (or is unknown). */
  async cancel(batch: string): Promise<boolean> {
    const { keys, ttlMs } = this.store;
    const done = await this.store.run(
      'BATCH_END',
      [keys.job(batch), keys.outcomes(batch)],
      ['failed', 'fail', EMPTY, Date.now(), ttlMs, keys.channel(batch)],
    );
    return done === 1;
  }

  /** Every item (of `total`) ended: submit the gather job with the ordered outcomes, or end the batch with them. */
  private async finish(
    batch: string,
    total: number,
    submitter: BatchSubmitter,
    gather: string,
    priority?: 'high' | 'normal' | 'low',
  ): Promise<void> {
    const { keys } = this.store;
    const outcomes = await this.store.hashOf(keys.outcomes(batch));
    const ordered: BatchItemOutcome[] = Array.from({ length: total }, (_, index) => outcomeOf(outcomes[String(index)]));
    const gathered = encodeBatchOutcomes(ordered);
    if (gather === '') {
      await this.endBatch(batch, { type: 'complete', data: gathered });
      return;
    }
    await submitter.submitBackground(gather, gathered, { unique: batchItemUnique(batch, 'gather'), priority });
    await this.store.run('GATHER_SUBMITTED', [keys.job(batch)], []);
  }

  /** Ends the batch with an outcome (its gather job's, or a failed item's); -1 when the batch is unknown. */
  private async endBatch(batch: string, outcome: WorkerJobEnd): Promise<number> {
    const { keys, ttlMs } = this.store;
    return (await this.store.run(
      'BATCH_END',
      [keys.job(batch), keys.outcomes(batch)],
      [
        outcome.type === 'complete' ? 'completed' : 'failed',
        outcome.type === 'complete' ? '' : outcome.type,
        outcome.type === 'fail' ? EMPTY : outcome.data,
        Date.now(),
        ttlMs,
        keys.channel(batch),
      ],
    )) as number;
  }
}

const EMPTY = Buffer.alloc(0);

function outcomeOf(tagged: Buffer | undefined): BatchItemOutcome {
  if (!tagged || tagged.length === 0) return { kind: 'fail', reason: 'The item has no recorded outcome' };
  const data = tagged.subarray(1);
  switch (String.fromCharCode(tagged[0])) {
    case 'c':
      return { kind: 'complete', data };
    case 'e':
      return { kind: 'exception', data };
    default:
      return { kind: 'fail' };
  }
}
