import { isEnvelope, openEnvelope } from '../protocol/envelope.js';

/** The first attempt of a retried job, as the envelope of a later attempt names it. Byte strings. */
export interface RetryOrigin {
  readonly unique: string;
  readonly handle: string;
}

/** The `retry.origin` a Nest worker put in a later attempt's envelope (see lib/nest/retry-policy.ts), if any. */
export function retryOrigin(data: string): RetryOrigin | undefined {
  if (data.charCodeAt(0) !== 0) return undefined; // an envelope starts with \0NGE
  const bytes = Buffer.from(data, 'latin1');
  if (!isEnvelope(bytes)) return undefined;
  let origin: unknown;
  try {
    origin = (openEnvelope(bytes)?.metadata.retry as { origin?: unknown } | undefined)?.origin;
  } catch {
    return undefined;
  }
  if (typeof origin !== 'object' || origin === null) return undefined;
  const { unique, handle } = origin as { unique?: unknown; handle?: unknown };
  if (typeof unique !== 'string' || typeof handle !== 'string') return undefined;
  // Envelope metadata is UTF-8 JSON; the server keeps ids as byte strings.
  return { unique: Buffer.from(unique, 'utf8').toString('latin1'), handle: Buffer.from(handle, 'utf8').toString('latin1') };
}
