import { isUtf8 } from 'node:buffer';

/**
 * How Nest values travel as Gearman payloads. Gearman payloads are opaque bytes, so the transport
 * picks one rule set and applies it to every payload in both directions (request data, streamed
 * values, results, error bodies):
 *
 * - Encoding: a Buffer or Uint8Array goes out as its bytes, untouched (raw text or binary for
 *   non-Nest peers); `undefined` goes out as the empty payload; every other value goes out as its
 *   JSON text. So the string `"42"` travels as `"42"` (quotes included) and the number 42 as `42`.
 * - Decoding: the empty payload is `undefined`; a payload that parses as JSON is that value; any
 *   other valid UTF-8 is the text itself, as a string; anything else stays a Buffer.
 *
 * Between two Nest peers every JSON value therefore round-trips exactly, and a plain Gearman
 * client sending `hello` (not JSON) reaches the handler as the string `'hello'`.
 */

const EMPTY = Buffer.alloc(0);

export function encodePayload(value: unknown): Buffer {
  if (value === undefined) return EMPTY;
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const json = JSON.stringify(value);
  if (json === undefined) {
    // JSON has no form for functions and symbols: refuse rather than send something else.
    throw new TypeError(`Cannot send a ${typeof value} as a Gearman payload: it has no JSON form`);
  }
  return Buffer.from(json, 'utf8');
}

export function decodePayload(payload: Buffer): unknown {
  if (payload.length === 0) return undefined;
  if (!isUtf8(payload)) return payload;
  const text = payload.toString('utf8');
  if (!mayBeJson(text)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Cheap pre-check sparing a throw for most plain text: JSON starts with one of these. */
function mayBeJson(text: string): boolean {
  const first = text.trimStart().charCodeAt(0);
  return (
    first === 0x7b /* { */ ||
    first === 0x5b /* [ */ ||
    first === 0x22 /* " */ ||
    first === 0x2d /* - */ ||
    (first >= 0x30 && first <= 0x39) /* digit */ ||
    first === 0x74 /* t */ ||
    first === 0x66 /* f */ ||
    first === 0x6e /* n */
  );
}
