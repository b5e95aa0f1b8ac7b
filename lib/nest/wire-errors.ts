import { RpcException } from '@nestjs/microservices';
import { GearmanErrorCode, GearmanJobTimeoutError } from '../common/errors.js';

/** Nest's own text for a request no handler matches (the built-in transports send the same). */
export const NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.';

/** What any error other than an RpcException becomes, as in Nest's own exception filter. */
export const INTERNAL_SERVER_ERROR = { status: 'error', message: 'Internal server error' } as const;

/**
 * The error body a handler failure travels with, as Nest's exception filters shape it. Handlers
 * wired by Nest already fail with that shape (`RpcException#getError()` as an object, or
 * `{ status: 'error', message }`); this only covers errors that reach the transport unshaped.
 */
export function toWireError(error: unknown): unknown {
  if (error instanceof GearmanJobTimeoutError) return timeoutBody(error);
  if (error instanceof RpcException) {
    const body = error.getError();
    return typeof body === 'object' && body !== null ? body : { status: 'error', message: body };
  }
  if (error instanceof Error) return INTERNAL_SERVER_ERROR;
  return error;
}

/** What a job that ran past its timeout ends with: Nest's error shape, with the code and the timeout. */
export interface JobTimeoutBody {
  status: 'error';
  code: GearmanErrorCode.JOB_TIMEOUT;
  message: string;
  timeoutMs: number;
}

function timeoutBody(error: GearmanJobTimeoutError): JobTimeoutBody {
  return { status: 'error', code: GearmanErrorCode.JOB_TIMEOUT, message: error.message, timeoutMs: error.timeoutMs };
}

/** Whether an error body that came back from a worker says the job timed out. */
export function isJobTimeoutBody(body: unknown): body is JobTimeoutBody {
  const candidate = body as Partial<JobTimeoutBody> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate.status === 'error' &&
    candidate.code === GearmanErrorCode.JOB_TIMEOUT &&
    typeof candidate.timeoutMs === 'number'
  );
}
