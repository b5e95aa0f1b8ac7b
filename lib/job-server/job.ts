import type { GearmanFunction } from './gearman-function.js';
import type { ServerConnection } from './server-connection.js';

/** Queue priorities, in the order workers are served. */
export const enum Priority {
  HIGH = 0,
  NORMAL = 1,
  LOW = 2,
}

export const PRIORITY_COUNT = 3;

// Flag bits of Job.flags: priority in the low two bits, then where the job is, the length of the
// unique id (at most 64), and the retry count in the bits above.
const PRIORITY_MASK = 0b11;
const BACKGROUND = 1 << 2;
const QUEUED = 1 << 3; // in its function's run queue
const DELAYED = 1 << 4; // waiting for its epoch time
const IGNORED = 1 << 5; // cancelled while running: its result goes nowhere
const UNIQUE_SHIFT = 6;
const UNIQUE_MASK = 0x7f;
const RETRY_SHIFT = 13;
const MAX_RETRIES = (2 ** 31 - 1) >>> RETRY_SHIFT;

/** What only a job being worked on needs. */
export class RunState {
  numerator = 0;
  denominator = 0;
  timer: NodeJS.Timeout | undefined = undefined;

  constructor(readonly worker: ServerConnection) {}
}

/**
 * One job. Kept small because a queue may hold millions: the unique id and the payload share one
 * byte string (latin1, one character a byte: a lossless copy, far smaller than a Buffer object),
 * small fields share one number, rarely used fields live elsewhere (RunState while running, the
 * broker's reducer names), and the run-queue links are on the job itself.
 */
export class Job {
  /** Run-queue links (intrusive doubly linked list: O(1) removal from anywhere). */
  prev: Job | undefined = undefined;
  next: Job | undefined = undefined;
  flags: number;
  run: RunState | undefined = undefined;
  /** Connections waiting for the result; a connection appears once per submit, as in gearmand. */
  clients: ServerConnection[] | undefined = undefined;

  /** The unique id followed by the payload. */
  readonly body: string;

  /** `unique` must be at most 64 characters (gearmand's limit, which the connection enforces). */
  constructor(
    readonly id: number,
    readonly fn: GearmanFunction,
    unique: string,
    data: string,
    priority: Priority,
    background: boolean,
  ) {
    this.body = unique + data;
    this.flags = priority | (background ? BACKGROUND : 0) | (unique.length << UNIQUE_SHIFT);
  }

  get uniqueLength(): number {
    return (this.flags >>> UNIQUE_SHIFT) & UNIQUE_MASK;
  }

  get unique(): string {
    return this.body.slice(0, this.uniqueLength);
  }

  get data(): string {
    return this.body.slice(this.uniqueLength);
  }

  get priority(): Priority {
    return this.flags & PRIORITY_MASK;
  }

  get background(): boolean {
    return (this.flags & BACKGROUND) !== 0;
  }

  get queued(): boolean {
    return (this.flags & QUEUED) !== 0;
  }

  set queued(on: boolean) {
    this.flags = on ? this.flags | QUEUED : this.flags & ~QUEUED;
  }

  get delayed(): boolean {
    return (this.flags & DELAYED) !== 0;
  }

  set delayed(on: boolean) {
    this.flags = on ? this.flags | DELAYED : this.flags & ~DELAYED;
  }

  get ignored(): boolean {
    return (this.flags & IGNORED) !== 0;
  }

  set ignored(on: boolean) {
    this.flags = on ? this.flags | IGNORED : this.flags & ~IGNORED;
  }

  get retries(): number {
    return this.flags >>> RETRY_SHIFT;
  }

  addRetry(): number {
    if (this.retries < MAX_RETRIES) this.flags += 1 << RETRY_SHIFT;
    return this.retries;
  }
}
