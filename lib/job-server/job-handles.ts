import { randomBytes } from 'node:crypto';
import { MAX_HANDLE_COUNTER_DIGITS, MAX_LOOKUP_BYTES } from './gearmand-limits.js';
import { SipHash64 } from './siphash.js';

/**
 * How job handles look: `unguessable` (the default) adds a keyed tag to the counter, so that only
 * whoever was given a handle can name the job (GET_STATUS, `cancel job`, a stored result);
 * `sequential` is gearmand's `<prefix>:<counter>`, for tools that parse it.
 */
export type JobHandleStyle = 'unguessable' | 'sequential';

export const JOB_HANDLE_STYLES: readonly JobHandleStyle[] = ['unguessable', 'sequential'];

/** Job handles of one server, from a job's counter and back, without storing anything per job. */
export interface JobHandles {
  of(id: number): string;
  /** The counter a handle holds, or undefined for a handle this server never made. */
  idOf(handle: string): number | undefined;
}

/** A counter as the server writes it: no leading zero, at most 16 digits. */
const COUNTER = new RegExp(`^[1-9]\\d{0,${MAX_HANDLE_COUNTER_DIGITS - 1}}$`);

/** gearmand's handles, `<prefix>:<counter>`. */
export class SequentialJobHandles implements JobHandles {
  private readonly start: string;

  /** `prefix` is a byte string (latin1). */
  constructor(prefix: string) {
    this.start = `${prefix}:`;
  }

  of(id: number): string {
    return this.start + id;
  }

  idOf(handle: string): number | undefined {
    if (!handle.startsWith(this.start)) return undefined;
    const digits = handle.slice(this.start.length);
    return COUNTER.test(digits) ? Number(digits) : undefined;
  }
}

const RECENT_HANDLES = 64;
/** A counter in base 36, no leading zero: at most 11 characters below 2^53. */
const BASE36_COUNTER = /^[1-9a-z][0-9a-z]{0,10}$/;
const TAG_HEX = 16;
/** `-` and the tag's 16 hex digits. */
const TAG_PART = 1 + TAG_HEX;
/** The longest counter part (2^53 in base 36). */
const MAX_COUNTER_PART = Number.MAX_SAFE_INTEGER.toString(36).length;
/** The longest prefix with which every unguessable handle fits gearmand's 64-byte buffer with its NUL. */
export const MAX_UNGUESSABLE_PREFIX_BYTES = MAX_LOOKUP_BYTES - 1 - MAX_COUNTER_PART - TAG_PART;

/** Two hex digits per byte value: formatting a tag with it is ten times cheaper than toString(16). */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

function hex8(value: number): string {
  return HEX[value >>> 24] + HEX[(value >>> 16) & 0xff] + HEX[(value >>> 8) & 0xff] + HEX[value & 0xff];
}

/** The value of 8 lower-case hex digits of `text` from `at`, or -1 when one is not such a digit. */
function parseHex8(text: string, at: number): number {
  let value = 0;
  for (let i = at; i < at + 8; i++) {
    const code = text.charCodeAt(i);
    const digit = code >= 0x30 && code <= 0x39 ? code - 0x30 : code >= 0x61 && code <= 0x66 ? code - 0x57 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/**
 * `<prefix>:<counter in base 36>-<tag>`, the tag a SipHash-2-4 of the counter under a random key
 * drawn when the server starts (64 bits, 16 hex digits): a handle cannot be derived from another
 * one, and a guess is right once in 2^64. The counter still finds the job in O(1), and nothing is
 * stored per job. A restarted server draws a new key, so handles from before never name its jobs.
 */
export class UnguessableJobHandles implements JobHandles {
  private readonly start: string;
  private readonly mac: SipHash64;
  /**
   * The handles made last, by counter modulo 64: a foreground job's handle is needed again for its
   * JOB_ASSIGN soon after its JOB_CREATED, and this saves the second hash at a fixed cost.
   */
  private readonly recentIds = new Float64Array(RECENT_HANDLES);
  private readonly recentHandles = new Array<string>(RECENT_HANDLES).fill('');

  /** `prefix` is a byte string (latin1); `key` 16 bytes, random unless given (tests). */
  constructor(prefix: string, key: Uint8Array = randomBytes(16)) {
    this.start = `${prefix}:`;
    this.mac = new SipHash64(key);
  }

  of(id: number): string {
    const slot = id & (RECENT_HANDLES - 1);
    if (this.recentIds[slot] === id) return this.recentHandles[slot];
    const mac = this.mac;
    mac.hash(id >>> 0, Math.floor(id / 0x100000000) >>> 0);
    const handle = `${this.start}${id.toString(36)}-${hex8(mac.high)}${hex8(mac.low)}`;
    this.recentIds[slot] = id;
    this.recentHandles[slot] = handle;
    return handle;
  }

  idOf(handle: string): number | undefined {
    const tagAt = handle.length - TAG_HEX;
    if (tagAt - 1 <= this.start.length || handle.charCodeAt(tagAt - 1) !== 0x2d /* - */ || !handle.startsWith(this.start)) return undefined;
    const counter = handle.slice(this.start.length, tagAt - 1);
    if (!BASE36_COUNTER.test(counter)) return undefined;
    const high = parseHex8(handle, tagAt);
    const low = parseHex8(handle, tagAt + 8);
    if (high < 0 || low < 0) return undefined;
    const id = parseInt(counter, 36);
    if (!Number.isSafeInteger(id)) return undefined;
    const mac = this.mac;
    mac.hash(id >>> 0, Math.floor(id / 0x100000000) >>> 0);
    // Compared as numbers, all bits at once, not character by character.
    return ((high ^ mac.high) | (low ^ mac.low)) === 0 ? id : undefined;
  }
}

export function createJobHandles(style: JobHandleStyle, prefix: string): JobHandles {
  return style === 'sequential' ? new SequentialJobHandles(prefix) : new UnguessableJobHandles(prefix);
}
