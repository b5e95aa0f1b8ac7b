import { RpcException } from '@nestjs/microservices';

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
  if (error instanceof RpcException) {
    const body = error.getError();
    return typeof body === 'object' && body !== null ? body : { status: 'error', message: body };
  }
  if (error instanceof Error) return INTERNAL_SERVER_ERROR;
  return error;
}
