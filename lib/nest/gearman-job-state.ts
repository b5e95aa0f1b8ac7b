import type { JobResult } from '../client/job-result.js';
import type { BatchCounts, UnknownReason } from '../protocol/result-fetch.js';

/** Progress as the job's last WORK_STATUS reported it (0/0 before any; a batch: sub-jobs ended / total). */
export interface GearmanJobProgress {
  readonly numerator: number;
  readonly denominator: number;
}

/** What is known of a job besides its state. */
export interface GearmanKnownJob {
  readonly handle?: string;
  readonly unique?: string;
  readonly functionName?: string;
  readonly createdAt?: Date;
  readonly progress: GearmanJobProgress;
  /** Present when the id names a batch: its sub-jobs in all, ended, and failed. */
  readonly batch?: BatchCounts;
}

/**
 * A job's state as `ClientGearman.getResult()` / `waitForResult()` report it, values decoded by the
 * payload rules (and the client's deserializer): `failed.error` is exactly what a `send()` of the
 * same job would have errored with.
 */
export type GearmanJobState<T = unknown> =
  | (GearmanKnownJob & { readonly state: 'queued' })
  | (GearmanKnownJob & { readonly state: 'running' })
  | (GearmanKnownJob & {
      readonly state: 'completed';
      readonly value: T;
      /** The values the job streamed before its result (WORK_DATA), in order. */
      readonly data: unknown[];
      readonly endedAt?: Date;
      /** The result was larger than the job server (or result store) keeps: `value` is undefined. */
      readonly resultDropped: boolean;
    })
  | (GearmanKnownJob & { readonly state: 'failed'; readonly error: unknown; readonly data: unknown[]; readonly endedAt?: Date })
  | { readonly state: 'unknown'; readonly id: string; readonly reason: UnknownReason };

/** One thing that happened to a followed job (`ClientGearman.follow()` / `followResult()`). */
export type GearmanJobEvent<T = unknown> =
  /** The job server queued the job under this handle (foreground jobs; a background one's handle too). */
  | { readonly type: 'created'; readonly handle: string }
  /** WORK_STATUS. */
  | { readonly type: 'progress'; readonly numerator: number; readonly denominator: number }
  /** WORK_DATA, decoded by the payload rules. */
  | { readonly type: 'data'; readonly value: unknown }
  /** WORK_WARNING, as UTF-8 text. */
  | { readonly type: 'warning'; readonly message: string }
  /** WORK_COMPLETE: the job's result; the Observable completes after it. */
  | { readonly type: 'result'; readonly value: T };

/** One item's outcome in a batch: its value, or its error as `send()` would have reported it. */
export type GearmanBatchOutcome<T = unknown> =
  { readonly index: number; readonly value: T } | { readonly index: number; readonly error: unknown };

/** Decodes one reply the way `send()` does: a value, or an error. */
export type ReplyDecoder = (reply: { data: Buffer } | { error: unknown }) => Promise<{ value: unknown } | { error: unknown }>;

/** A low-level JobResult with its values decoded. */
export async function toGearmanJobState<T>(result: JobResult, decode: ReplyDecoder): Promise<GearmanJobState<T>> {
  if (result.state === 'unknown') return result;
  const { state: _state, ...known } = result;
  switch (result.state) {
    case 'queued':
    case 'running':
      return { ...stripRaw(known), state: result.state };
    case 'completed': {
      // A streaming handler's last value goes out as WORK_DATA and again as WORK_COMPLETE: as send()
      // does, the repeat is the value, not one more part.
      const last = result.data[result.data.length - 1];
      const parts = last !== undefined && last.equals(result.result) ? result.data.slice(0, -1) : result.data;
      const data = await decodeAll(parts, decode);
      const reply = result.resultDropped ? { value: undefined } : await decode({ data: result.result });
      if ('error' in reply) return { ...stripRaw(known), state: 'failed', error: reply.error, data, endedAt: result.endedAt };
      return {
        ...stripRaw(known),
        state: 'completed',
        value: reply.value as T,
        data,
        endedAt: result.endedAt,
        resultDropped: result.resultDropped,
      };
    }
    case 'failed': {
      const data = await decodeAll(result.data, decode);
      const reply = await decode({ error: result.error });
      return { ...stripRaw(known), state: 'failed', error: 'error' in reply ? reply.error : reply.value, data, endedAt: result.endedAt };
    }
  }
}

async function decodeAll(parts: Buffer[], decode: ReplyDecoder): Promise<unknown[]> {
  const values: unknown[] = [];
  for (const part of parts) {
    const reply = await decode({ data: part });
    values.push('error' in reply ? reply.error : reply.value);
  }
  return values;
}

/** Keeps the identity fields of a low-level result, dropping its raw bytes. */
function stripRaw(known: object): GearmanKnownJob {
  const { handle, unique, functionName, createdAt, progress, batch } = known as GearmanKnownJob;
  return { handle, unique, functionName, createdAt, progress, ...(batch ? { batch } : {}) };
}
