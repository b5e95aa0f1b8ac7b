import { GearmanJobExceptionError, GearmanJobFailedError } from '../common/errors.js';
import type { BatchCounts, JobStateRecord, UnknownReason } from '../protocol/result-fetch.js';

/** Progress as the last WORK_STATUS reported it (0/0 before any). */
export interface JobProgress {
  readonly numerator: number;
  readonly denominator: number;
}

/** What is known of a job besides its state. */
interface KnownJob {
  readonly handle?: string;
  readonly unique?: string;
  readonly functionName?: string;
  readonly createdAt?: Date;
  readonly progress: JobProgress;
  /** Present when the id names a batch: its sub-jobs in all, ended, failed. */
  readonly batch?: BatchCounts;
}

/** Waiting in its queue. */
export interface QueuedJobResult extends KnownJob {
  readonly state: 'queued';
}

/** A worker runs it. */
export interface RunningJobResult extends KnownJob {
  readonly state: 'running';
}

/** Ended with WORK_COMPLETE. */
export interface CompletedJobResult extends KnownJob {
  readonly state: 'completed';
  /** The WORK_COMPLETE payload (empty when `resultDropped`). */
  readonly result: Buffer;
  /** The WORK_DATA parts the job sent before it ended, in order. */
  readonly data: Buffer[];
  readonly endedAt?: Date;
  /** The result was larger than the server keeps: the job completed but its bytes are gone. */
  readonly resultDropped: boolean;
}

/** Ended with WORK_FAIL or WORK_EXCEPTION: `error` is what a foreground `ClientJob.result` would have rejected with. */
export interface FailedJobResult extends KnownJob {
  readonly state: 'failed';
  readonly error: GearmanJobFailedError | GearmanJobExceptionError;
  readonly data: Buffer[];
  readonly endedAt?: Date;
}

/** Nothing is known of the id: never a background job there, or its result was dropped by retention. */
export interface UnknownJobResult {
  readonly state: 'unknown';
  /** The handle or unique id asked about. */
  readonly id: string;
  readonly reason: UnknownReason;
}

/** The state of a job, fetched from the job server that ran it. */
export type JobResult = QueuedJobResult | RunningJobResult | CompletedJobResult | FailedJobResult | UnknownJobResult;

/** Whether the job has ended (or nothing can be learnt of it any more). */
export function isFinalJobResult(result: JobResult): result is CompletedJobResult | FailedJobResult | UnknownJobResult {
  return result.state === 'completed' || result.state === 'failed' || result.state === 'unknown';
}

/** A JobResult from the record of a machine-form reply, its payload and the WORK_DATA parts before it. */
export function jobResultFrom(id: string, record: JobStateRecord, payload: Buffer, parts: Buffer[]): JobResult {
  if (record.state === 'unknown') return { state: 'unknown', id, reason: record.reason === 'expired' ? 'expired' : 'not-found' };
  const handle = record.handle;
  const known: KnownJob = {
    handle,
    unique: record.unique,
    functionName: record.function,
    createdAt: dateOf(record.createdAt),
    progress: { numerator: record.numerator ?? 0, denominator: record.denominator ?? 0 },
    ...(record.batch ? { batch: record.batch } : {}),
  };
  switch (record.state) {
    case 'queued':
    case 'running':
      return { ...known, state: record.state };
    case 'completed':
      return {
        ...known,
        state: 'completed',
        result: payload,
        data: parts,
        endedAt: dateOf(record.endedAt),
        resultDropped: record.dropped === true,
      };
    case 'failed': {
      const who = handle ?? id;
      const fn = record.function ?? '';
      const error = record.failure === 'exception' ? new GearmanJobExceptionError(who, fn, payload) : new GearmanJobFailedError(who, fn);
      return { ...known, state: 'failed', error, data: parts, endedAt: dateOf(record.endedAt) };
    }
  }
}

function dateOf(ms: number | undefined): Date | undefined {
  return typeof ms === 'number' ? new Date(ms) : undefined;
}
