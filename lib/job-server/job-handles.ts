import { MAX_HANDLE_COUNTER_DIGITS } from './gearmand-limits.js';

/** A counter as the server writes it: no leading zero, at most 16 digits. */
const COUNTER = new RegExp(`^[1-9]\\d{0,${MAX_HANDLE_COUNTER_DIGITS - 1}}$`);

/** Job handles as gearmand makes them, `<prefix>:<counter>`, and back from a handle to its counter. */
export class JobHandles {
  private readonly start: string;

  /** `prefix` is a byte string (latin1). */
  constructor(prefix: string) {
    this.start = `${prefix}:`;
  }

  of(id: number): string {
    return this.start + id;
  }

  /** The counter a handle holds, or undefined for a handle this server never makes. */
  idOf(handle: string): number | undefined {
    if (!handle.startsWith(this.start)) return undefined;
    const digits = handle.slice(this.start.length);
    return COUNTER.test(digits) ? Number(digits) : undefined;
  }
}
