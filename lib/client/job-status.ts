/** What GET_STATUS tells about a job. */
export interface JobStatus {
  handle: string;
  /** Whether the server knows the handle. */
  known: boolean;
  /** Whether a worker is running it. */
  running: boolean;
  numerator: number;
  denominator: number;
}

/** What GET_STATUS_UNIQUE tells about a job, by unique id. */
export interface UniqueJobStatus extends Omit<JobStatus, 'handle'> {
  unique: string;
  /** Foreground clients waiting for the job. */
  waitingClients: number;
}

/** A numeric status field; anything unparsable reads as 0. */
export function statusNumber(field: Buffer): number {
  const value = Number(field.toString('latin1'));
  return Number.isFinite(value) ? value : 0;
}
