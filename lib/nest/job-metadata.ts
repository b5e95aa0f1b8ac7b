import { EnvelopeError, openEnvelope, sealEnvelope, type EnvelopeMetadata } from '../protocol/envelope.js';

/**
 * Metadata that travels with a job between Nest peers, beside its payload: string values by name,
 * as Nest's `PacketMetadata` (what a Nest 12 dispatch hook sets on `packet.metadata`). W3C trace
 * context travels here as `traceparent` and `tracestate`, as it would in HTTP headers.
 *
 * On the wire it is the job envelope's `metadata` field (see `nestjs-gearman/protocol`), sent only
 * by a `ClientGearman` whose `envelope` option covers the function, and read by `ServerGearman`. The
 * envelope's other fields belong to other features (`retry`: retries of background jobs).
 */
export type GearmanJobMetadata = Record<string, string>;

/** The W3C trace context a job carried. */
export interface TraceContext {
  readonly traceparent: string;
  readonly tracestate?: string;
}

const METADATA_FIELD = 'metadata';
/** version-traceid-parentid-flags; version ff is invalid, as are all-zero ids. */
const TRACEPARENT = /^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$/;

/**
 * The payload with the metadata, and any other envelope fields, ahead of it in an envelope; the
 * bare payload when there is nothing to send with it.
 */
export function sealJobPayload(payload: Buffer, metadata: GearmanJobMetadata | undefined, fields: EnvelopeMetadata = {}): Buffer {
  const sealed: EnvelopeMetadata = { ...fields };
  if (metadata && Object.keys(metadata).length > 0) sealed[METADATA_FIELD] = metadata;
  return Object.keys(sealed).length === 0 ? payload : sealEnvelope(sealed, payload);
}

/**
 * Splits a job's bytes into its payload and its envelope's fields. Bytes that are not an envelope
 * are the payload as a plain Gearman client sent it. Throws EnvelopeError on a broken envelope, or
 * one whose `metadata` field is not string values by name.
 */
export function openJobPayload(data: Buffer): { payload: Buffer; envelope: EnvelopeMetadata | undefined } {
  const opened = openEnvelope(data);
  if (!opened) return { payload: data, envelope: undefined };
  const metadata = opened.metadata[METADATA_FIELD];
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
      throw new EnvelopeError('The envelope metadata field is not an object of strings');
    }
    for (const value of Object.values(metadata)) {
      if (typeof value !== 'string') throw new EnvelopeError('The envelope metadata field is not an object of strings');
    }
  }
  return { payload: opened.payload, envelope: opened.metadata };
}

/** The metadata field of envelope fields that `openJobPayload` checked. */
export function metadataOf(envelope: EnvelopeMetadata | undefined): GearmanJobMetadata | undefined {
  return envelope?.[METADATA_FIELD] as GearmanJobMetadata | undefined;
}

/** The valid W3C trace context in the metadata, if any. */
export function traceContextOf(metadata: GearmanJobMetadata | undefined): TraceContext | undefined {
  const traceparent = metadata?.traceparent;
  if (traceparent === undefined || !TRACEPARENT.test(traceparent)) return undefined;
  const tracestate = metadata?.tracestate;
  return tracestate === undefined ? { traceparent } : { traceparent, tracestate };
}
