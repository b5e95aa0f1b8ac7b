/**
 * gearmand's limits and the way it reads numbers, in one place. gearmand reads numbers from
 * packets with C's atoi/strtol and cuts arguments at its buffer sizes; the server answers as it
 * does, byte for byte, so every such rule is written here once.
 */

/** A unique id (and a reduce job's reducer name) over this gets ERROR ARGUMENT_TOO_LARGE. */
export const MAX_UNIQUE_BYTES = 64;
/** SET_CLIENT_ID keeps this many bytes of the id. */
export const MAX_CLIENT_ID_BYTES = 127;
/** GET_STATUS and WORK_FAIL copy the handle, GET_STATUS_UNIQUE the unique id, into 64 bytes with its NUL. */
export const MAX_LOOKUP_BYTES = 63;
/** gearmand's receive buffer: every argument but a payload must fit in it, with its NUL separator. */
export const MAX_ARGUMENT_BYTES = 8192;
/** Job handles fit gearmand's 64-byte handle buffer: a prefix, ':' and a counter of up to 16 digits. */
export const MAX_HANDLE_BYTES = 64;
export const MAX_HANDLE_COUNTER_DIGITS = 16;
export const MAX_HANDLE_PREFIX_BYTES = MAX_HANDLE_BYTES - 1 - MAX_HANDLE_COUNTER_DIGITS;
/** gearmand arms a CAN_DO_TIMEOUT timer with at least a second. */
export const MIN_WORKER_TIMEOUT_MS = 1000;

/** gearmand 2.0 reads a CAN_DO_TIMEOUT timeout of at most 20 characters with strtol. */
const MAX_TIMEOUT_CHARACTERS = 20;
/** gearmand copies a WORK_STATUS denominator into an 11-byte buffer before reading it. */
const MAX_DENOMINATOR_DIGITS = 10;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

/** What strtol and atoi read: leading white space (C's isspace: ASCII only), an optional sign, decimal digits. */
const LEADING_INTEGER = /^[\t\n\v\f\r ]*([+-]?\d+)/;

/** The sign and digits strtol would read at the start of `text`, or undefined when it reads none. */
function leadingInteger(text: string): string | undefined {
  return LEADING_INTEGER.exec(text)?.[1];
}

/** C's atoi as gearmand uses it for SUBMIT_JOB_EPOCH times and `maxqueue` limits: 0 when there are no digits. */
export function atoi(text: string): number {
  const digits = leadingInteger(text);
  return digits === undefined ? 0 : Number(digits);
}

/** `(uint32_t)atoi(text)` on 64-bit Linux: strtol saturates at 64 bits, then the low 32 bits remain. */
export function atoiUint32(text: string): number {
  const digits = leadingInteger(text);
  if (digits === undefined) return 0;
  let value = BigInt(digits);
  if (value < LONG_MIN) value = LONG_MIN;
  else if (value > LONG_MAX) value = LONG_MAX;
  return Number(BigInt.asUintN(32, value));
}

/** A WORK_STATUS numerator as gearmand stores it (GET_STATUS reports this). */
export function storedNumerator(text: string): number {
  return atoiUint32(text);
}

/** A WORK_STATUS denominator as gearmand stores it: read from its first 10 bytes only. */
export function storedDenominator(text: string): number {
  return atoiUint32(text.length > MAX_DENOMINATOR_DIGITS ? text.slice(0, MAX_DENOMINATOR_DIGITS) : text);
}

/**
 * A CAN_DO_TIMEOUT timeout in ms as gearmand 2.0 reads it: not a number counts as 0 (none), a
 * negative one too; undefined when gearmand drops the connection (over 20 characters, or at or
 * beyond the range of a 64-bit long, which strtol reports as overflow).
 */
export function canDoTimeout(text: string): number | undefined {
  const digits = leadingInteger(text);
  const value = digits === undefined ? 0n : BigInt(digits);
  if (text.length > MAX_TIMEOUT_CHARACTERS || value >= LONG_MAX || value <= LONG_MIN) return undefined;
  return value > 0n ? Number(value) : 0;
}
