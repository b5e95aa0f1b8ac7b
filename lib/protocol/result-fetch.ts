import { isEnvelope, openEnvelope, sealEnvelope, type EnvelopeMetadata } from './envelope.js';

/**
 * Fetching a job's stored state with an ordinary job submission, so that any Gearman client (the
 * `gearman` CLI, PHP, Perl) can do it. A job server of this package answers these functions itself;
 * no worker is involved. The payload names the job: its handle or its unique id.
 *
 * Plain form, for people and other languages:
 *
 * - `gearman.result` waits until the job has ended, relaying its WORK_STATUS, WORK_WARNING and
 *   WORK_DATA while it runs, then ends the way the job ended: its WORK_DATA parts, then WORK_COMPLETE
 *   with its result, WORK_FAIL, or WORK_EXCEPTION with its payload. `gearman -f gearman.result H:host:42`
 *   prints the result.
 * - `gearman.result.nowait` answers at once: the same for an ended job, a failure otherwise.
 * - A job that cannot be answered (unknown, expired, still running when asked not to wait, a
 *   malformed id) fails: WORK_WARNING with a one-line reason, then WORK_EXCEPTION with the same line
 *   (clients without the `exceptions` option see WORK_FAIL after the warning). The line starts with a
 *   stable code: `UNKNOWN`, `EXPIRED`, `QUEUED`, `RUNNING` or `MALFORMED`.
 *
 * Machine form, for this package's clients: the payload is a job envelope (see envelope.ts) whose
 * metadata is a {@link ResultRequest} and whose payload is the id. The reply never fails for the
 * fetched job's sake: it is zero or more WORK_STATUS / WORK_WARNING / WORK_DATA (the job's own, while
 * following it, and its stored WORK_DATA parts once it ended), then WORK_COMPLETE whose payload is an
 * envelope: metadata a {@link JobStateRecord}, payload the job's result (completed), its exception
 * payload (failed with WORK_EXCEPTION), or nothing.
 */

/** Waits for the end, or answers in the machine form. */
export const RESULT_FUNCTION = 'gearman.result';
/** Answers at once. */
export const RESULT_NOW_FUNCTION = 'gearman.result.nowait';

/** The longest handle or unique id: gearmand's limit for both. */
export const MAX_JOB_ID_BYTES = 64;

export type JobStateName = 'queued' | 'running' | 'completed' | 'failed' | 'unknown';

/** Why a job is unknown: never seen here (or a foreground job, whose result is not kept), or its result was dropped by retention. */
export type UnknownReason = 'not-found' | 'expired';

/** What a machine-form request asks for. */
export interface ResultRequest {
  /** Hold the answer until the job has ended (or `timeoutMs` passed); default false: answer at once. */
  readonly wait?: boolean;
  /** With `wait`: answer with the state as it is after this long. Absent: no limit on the server's side. */
  readonly timeoutMs?: number;
  /** With `wait`: relay the job's WORK_STATUS, WORK_WARNING and WORK_DATA as they happen. */
  readonly follow?: boolean;
}

/** Progress of a batch: sub-jobs in all, ended, and failed among those. */
export interface BatchCounts {
  readonly total: number;
  readonly ended: number;
  readonly failed: number;
}

/** The state of a job as the job server knows it: the metadata of a machine-form reply. */
export interface JobStateRecord {
  readonly state: JobStateName;
  readonly handle?: string;
  readonly unique?: string;
  readonly function?: string;
  /** The last WORK_STATUS (0/0 when none). */
  readonly numerator?: number;
  readonly denominator?: number;
  /** WORK_DATA parts of an ended job; they precede the WORK_COMPLETE that carries this record. */
  readonly parts?: number;
  /** When the job was submitted and when it ended, in ms since the epoch. */
  readonly createdAt?: number;
  readonly endedAt?: number;
  /** How a failed job ended: WORK_FAIL, or WORK_EXCEPTION (its payload is the reply's payload). */
  readonly failure?: 'fail' | 'exception';
  /** Only for `unknown`. */
  readonly reason?: UnknownReason;
  /** The result was larger than the server keeps: the job completed, its result bytes are gone. */
  readonly dropped?: boolean;
  /** Present when the id names a batch. */
  readonly batch?: BatchCounts;
}

/** Codes that start the reason line of a plain-form failure. */
export type ResultRefusalCode = 'UNKNOWN' | 'EXPIRED' | 'QUEUED' | 'RUNNING' | 'MALFORMED';

export class ResultFetchError extends Error {
  override readonly name = 'ResultFetchError';
}

/** Throws ResultFetchError unless the id is a possible handle or unique id: 1 to 64 bytes, no NUL. */
export function checkJobId(id: Buffer | string): Buffer {
  const bytes = typeof id === 'string' ? Buffer.from(id, 'utf8') : id;
  if (bytes.length === 0 || bytes.length > MAX_JOB_ID_BYTES || bytes.includes(0)) {
    throw new ResultFetchError(
      `A job handle or unique id is 1-${MAX_JOB_ID_BYTES} bytes without NUL, got ${bytes.length === 0 ? 'nothing' : `${bytes.length} bytes`}`,
    );
  }
  return bytes;
}

/** The payload of a machine-form request for `id`. Throws ResultFetchError on a malformed id or option. */
export function encodeResultRequest(id: Buffer | string, request: ResultRequest = {}): Buffer {
  const metadata: EnvelopeMetadata = { wait: request.wait === true };
  if (request.timeoutMs !== undefined) {
    if (!Number.isInteger(request.timeoutMs) || request.timeoutMs < 0) {
      throw new ResultFetchError(`timeoutMs must be a whole number of ms ≥ 0, got ${request.timeoutMs}`);
    }
    metadata.timeoutMs = request.timeoutMs;
  }
  if (request.follow === true) metadata.follow = true;
  return sealEnvelope(metadata, checkJobId(id));
}

/** A request as the job server reads it. */
export type DecodedResultRequest =
  | { readonly form: 'plain'; readonly id: string; readonly wait: boolean }
  | { readonly form: 'machine'; readonly id: string; readonly request: Required<Pick<ResultRequest, 'wait' | 'follow'>> & ResultRequest }
  | { readonly form: 'plain' | 'machine'; readonly malformed: string };

/**
 * Reads the payload of a submission to `gearman.result` (`waitByDefault` true) or
 * `gearman.result.nowait` (false). Ids come back as byte strings (latin1), as the job server keeps
 * handles and unique ids. A plain id loses one trailing newline (`echo H:x:1 | gearman -f …`).
 */
export function decodeResultRequest(payload: Buffer, waitByDefault: boolean): DecodedResultRequest {
  if (!isEnvelope(payload)) {
    let end = payload.length;
    if (end > 0 && payload[end - 1] === 0x0a) end--;
    if (end > 0 && payload[end - 1] === 0x0d) end--;
    const id = payload.subarray(0, end);
    const problem = idProblem(id);
    return problem ? { form: 'plain', malformed: problem } : { form: 'plain', id: id.toString('latin1'), wait: waitByDefault };
  }
  let opened;
  try {
    opened = openEnvelope(payload)!;
  } catch (error) {
    return { form: 'machine', malformed: (error as Error).message };
  }
  const { wait, timeoutMs, follow } = opened.metadata;
  if (typeof wait !== 'boolean') return { form: 'machine', malformed: 'wait must be true or false' };
  if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || (timeoutMs as number) < 0)) {
    return { form: 'machine', malformed: 'timeoutMs must be a whole number ≥ 0' };
  }
  if (follow !== undefined && typeof follow !== 'boolean') return { form: 'machine', malformed: 'follow must be true or false' };
  const problem = idProblem(opened.payload);
  if (problem) return { form: 'machine', malformed: problem };
  return {
    form: 'machine',
    id: opened.payload.toString('latin1'),
    request: { wait, follow: follow === true, ...(timeoutMs === undefined ? {} : { timeoutMs: timeoutMs as number }) },
  };
}

function idProblem(id: Buffer): string | undefined {
  try {
    checkJobId(id);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The WORK_COMPLETE payload of a machine-form reply. */
export function encodeResultReply(record: JobStateRecord, payload: Buffer = EMPTY): Buffer {
  return sealEnvelope(withoutUndefined(record), payload);
}

/** Reads the WORK_COMPLETE payload of a machine-form reply. Throws ResultFetchError when it is not one. */
export function decodeResultReply(bytes: Buffer): { record: JobStateRecord; payload: Buffer } {
  let opened;
  try {
    opened = openEnvelope(bytes);
  } catch (error) {
    throw new ResultFetchError(`The result reply is broken: ${(error as Error).message}`, { cause: error });
  }
  if (!opened) throw new ResultFetchError('The result reply is not an envelope: the job server does not answer gearman.result');
  const state = opened.metadata.state;
  if (state !== 'queued' && state !== 'running' && state !== 'completed' && state !== 'failed' && state !== 'unknown') {
    throw new ResultFetchError(`The result reply names no known state (${JSON.stringify(state)})`);
  }
  return { record: opened.metadata as unknown as JobStateRecord, payload: opened.payload };
}

/** The one-line reason of a plain-form failure, e.g. `UNKNOWN H:host:42: …` (no id for MALFORMED). */
export function formatResultRefusal(code: ResultRefusalCode, id: string | undefined, detail: string): string {
  return id === undefined ? `${code}: ${detail}\n` : `${code} ${id}: ${detail}\n`;
}

const EMPTY = Buffer.alloc(0);

function withoutUndefined(record: JobStateRecord): EnvelopeMetadata {
  const out: EnvelopeMetadata = {};
  for (const [key, value] of Object.entries(record)) if (value !== undefined) out[key] = value;
  return out;
}
