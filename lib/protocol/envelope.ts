/**
 * The job envelope: how Nest peers carry metadata (trace context, retry policy, attempt number)
 * with a job, since Gearman jobs have no header field. Only clients that opt in send it, and only
 * to functions served by this package's workers; plain Gearman clients and workers never see one.
 *
 * Layout (big-endian):
 *
 *     0   4 bytes  magic `\0NGE` (the style of the protocol's `\0REQ` / `\0RES`)
 *     4   1 byte   version, 1
 *     5   4 bytes  length N of the metadata
 *     9   N bytes  metadata: a JSON object, UTF-8
 *     9+N ...      the job's own payload, untouched
 *
 * A payload that does not start with the magic and version is not an envelope: it is the job's
 * payload as it came (a plain Gearman client's bytes).
 */

export const ENVELOPE_MAGIC = Buffer.from('\0NGE', 'latin1');
export const ENVELOPE_VERSION = 1;
/** Metadata beyond this is refused: it is meant for a few short fields, not for data. */
export const MAX_ENVELOPE_METADATA_BYTES = 64 * 1024;

/** Magic, version and metadata length. */
export const ENVELOPE_HEADER_BYTES = ENVELOPE_MAGIC.length + 1 + 4;

/** Metadata fields: JSON values by name. */
export type EnvelopeMetadata = Record<string, unknown>;

export interface OpenedEnvelope {
  readonly metadata: EnvelopeMetadata;
  readonly payload: Buffer;
}

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

/** Wraps a payload with metadata. Throws EnvelopeError when the metadata is not a JSON object or is too large. */
export function sealEnvelope(metadata: EnvelopeMetadata, payload: Buffer): Buffer {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new EnvelopeError('Envelope metadata must be a plain object');
  }
  const json = Buffer.from(JSON.stringify(metadata), 'utf8');
  if (json.length > MAX_ENVELOPE_METADATA_BYTES) {
    throw new EnvelopeError(`Envelope metadata is ${json.length} bytes, over the ${MAX_ENVELOPE_METADATA_BYTES}-byte limit`);
  }
  const sealed = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + json.length + payload.length);
  ENVELOPE_MAGIC.copy(sealed, 0);
  sealed[ENVELOPE_MAGIC.length] = ENVELOPE_VERSION;
  sealed.writeUInt32BE(json.length, ENVELOPE_MAGIC.length + 1);
  json.copy(sealed, ENVELOPE_HEADER_BYTES);
  payload.copy(sealed, ENVELOPE_HEADER_BYTES + json.length);
  return sealed;
}

/** Whether the bytes start like an envelope (magic and version). */
export function isEnvelope(data: Buffer): boolean {
  return data.length >= ENVELOPE_HEADER_BYTES && data.compare(ENVELOPE_MAGIC, 0, 4, 0, 4) === 0 && data[4] === ENVELOPE_VERSION;
}

/**
 * Opens an envelope; undefined when the bytes are not one. Throws EnvelopeError when they start
 * like one but are broken (a length past the end, metadata that is not a JSON object).
 * The payload is a view into `data`, not a copy.
 */
export function openEnvelope(data: Buffer): OpenedEnvelope | undefined {
  if (!isEnvelope(data)) return undefined;
  const length = data.readUInt32BE(ENVELOPE_MAGIC.length + 1);
  if (length > MAX_ENVELOPE_METADATA_BYTES || ENVELOPE_HEADER_BYTES + length > data.length) {
    throw new EnvelopeError(`Envelope metadata length ${length} does not fit the ${data.length}-byte payload`);
  }
  let metadata: unknown;
  try {
    metadata = JSON.parse(data.toString('utf8', ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + length));
  } catch (error) {
    throw new EnvelopeError('Envelope metadata is not valid JSON', { cause: error });
  }
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new EnvelopeError('Envelope metadata is not a JSON object');
  }
  return { metadata: metadata as EnvelopeMetadata, payload: data.subarray(ENVELOPE_HEADER_BYTES + length) };
}
