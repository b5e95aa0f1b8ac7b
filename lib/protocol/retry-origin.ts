import { ENVELOPE_HEADER_BYTES, isEnvelope, openEnvelope } from './envelope.js';

/**
 * The first attempt of a retried job, as a later attempt's envelope names it (`retry.origin`, put
 * there by a Nest worker that queues the next attempt, see lib/nest/retry-policy.ts).
 */
export interface RetryOrigin {
  readonly unique: string;
  readonly handle: string;
  /** The attempt the envelope is for (2 or more). */
  readonly attempt: number;
}

/** The `retry.origin` in a job's payload, if it is an envelope that has one. Strings as the envelope's JSON holds them. */
export function retryOriginOf(payload: Buffer): RetryOrigin | undefined {
  if (payload[0] !== 0 || !isEnvelope(payload)) return undefined; // an envelope starts with \0NGE
  let retry: { origin?: unknown; attempt?: unknown } | undefined;
  try {
    retry = openEnvelope(payload)?.metadata.retry as { origin?: unknown; attempt?: unknown } | undefined;
  } catch {
    return undefined;
  }
  const origin = retry?.origin;
  const attempt = typeof retry?.attempt === 'number' && Number.isInteger(retry.attempt) ? retry.attempt : 2;
  if (typeof origin !== 'object' || origin === null) return undefined;
  const { unique, handle } = origin as { unique?: unknown; handle?: unknown };
  if (typeof unique !== 'string' || typeof handle !== 'string') return undefined;
  return { unique, handle, attempt };
}

/** retryOriginOf for a job server's byte strings (latin1, one character a byte): the ids come back as byte strings too. */
export function retryOrigin(data: string): RetryOrigin | undefined {
  if (data.charCodeAt(0) !== 0) return undefined;
  // Only the header and the metadata are read: the job's payload after them is not copied.
  const metadataLength = ((data.charCodeAt(5) << 24) | (data.charCodeAt(6) << 16) | (data.charCodeAt(7) << 8) | data.charCodeAt(8)) >>> 0;
  const origin = retryOriginOf(Buffer.from(data.slice(0, ENVELOPE_HEADER_BYTES + metadataLength), 'latin1'));
  if (!origin) return undefined;
  // Envelope metadata is UTF-8 JSON.
  return {
    unique: Buffer.from(origin.unique, 'utf8').toString('latin1'),
    handle: Buffer.from(origin.handle, 'utf8').toString('latin1'),
    attempt: origin.attempt,
  };
}
