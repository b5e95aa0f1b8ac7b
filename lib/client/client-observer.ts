import {
  GearmanConnectionError,
  GearmanJobExceptionError,
  GearmanJobFailedError,
  GearmanJobReleasedError,
  GearmanServerError,
} from '../common/errors.js';

/**
 * How a submitted job ended for the client: `completed` (a foreground job's WORK_COMPLETE, a
 * background job's JOB_CREATED), `failed` (WORK_FAIL), `exception` (WORK_EXCEPTION),
 * `server_error` (an ERROR reply, e.g. QUEUE_ERROR), `connection` (lost with its connection, or
 * none could be made), `released` (the caller stopped waiting), `refused` (never sent: bad
 * arguments, or the connection's queue was full).
 */
export type ClientJobOutcome = 'completed' | 'failed' | 'exception' | 'server_error' | 'connection' | 'released' | 'refused';

/**
 * Told of every job a `GearmanClient` submits and of how it ended; metrics use it. It runs on the
 * submit and reply paths, so it must be cheap and must not throw.
 */
export interface GearmanClientObserver {
  jobSubmitted(functionName: string, background: boolean): void;
  /** `seconds`: from the submit to the end. */
  jobEnded(functionName: string, background: boolean, outcome: ClientJobOutcome, seconds: number): void;
}

export function clientJobOutcome(error: unknown): ClientJobOutcome {
  if (error instanceof GearmanJobFailedError) return 'failed';
  if (error instanceof GearmanJobExceptionError) return 'exception';
  if (error instanceof GearmanConnectionError) return 'connection';
  if (error instanceof GearmanJobReleasedError) return 'released';
  if (error instanceof GearmanServerError) return 'server_error';
  return 'refused';
}
