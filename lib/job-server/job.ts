import type { BrokerPeer } from './broker-peer.js';

/** Queue priorities, in the order workers are served. */
export const enum Priority {
  HIGH = 0,
  NORMAL = 1,
  LOW = 2,
}

export const PRIORITY_COUNT = 3;

/**
 * A connection as the jobs it waits for or works on link to it: the broker's PeerState. Declared
 * here so a job needs nothing but this file.
 */
export interface JobPeer {
  readonly peer: BrokerPeer;
  /** The peer no longer waits for this job's result. */
  stopWaiting(job: Job): void;
  /** The peer no longer works on this job, held under `handle` (it ended, or went back to its queue). */
  release(handle: string): void;
}

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

/** What only a job being worked on needs: its worker, its handle, its progress, its CAN_DO_TIMEOUT timer. */
export class RunState {
  private progressNumerator = 0;
  private progressDenominator = 0;
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly worker: JobPeer,
    /** The handle the worker was given (made once per run: an unguessable handle costs a hash). */
    readonly handle: string,
  ) {}

  /** The last WORK_STATUS, as gearmand stores it (0 and 0 before any). */
  get numerator(): number {
    return this.progressNumerator;
  }

  get denominator(): number {
    return this.progressDenominator;
  }

  setProgress(numerator: number, denominator: number): void {
    this.progressNumerator = numerator;
    this.progressDenominator = denominator;
  }

  /** Calls `onExpiry` after `ms` unless the run stops first. */
  startTimer(ms: number, onExpiry: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      onExpiry();
    }, ms);
  }

  stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * One job. Kept small because a queue may hold millions: the unique id and the payload share one
 * byte string (latin1, one character a byte: a lossless copy, far smaller than a Buffer object),
 * small fields share one number, rarely used fields live elsewhere (RunState while running, the
 * broker's reducer names), and the run-queue links are on the job itself.
 */
export class Job {
  /** Run-queue links (intrusive doubly linked list: O(1) removal from anywhere); only GearmanFunction moves them. */
  prev: Job | undefined = undefined;
  next: Job | undefined = undefined;
  private flags: number;
  private runState: RunState | undefined = undefined;
  /** Peers waiting for the result; a peer appears once per submit, as in gearmand. */
  private waiters: JobPeer[] | undefined = undefined;

  /** The unique id followed by the payload. */
  readonly body: string;
  /** When the broker created it (ms since the epoch): what a kept result tells as its start. */
  readonly createdAt = Date.now();

  /** `unique` must be at most 64 characters (gearmand's limit, which the connection enforces). */
  constructor(
    readonly id: number,
    /** The name of its function: the broker's key for the function's queues. */
    readonly functionName: string,
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

  /** In its function's run queue (set by GearmanFunction). */
  get queued(): boolean {
    return (this.flags & QUEUED) !== 0;
  }

  setQueued(on: boolean): void {
    this.flags = on ? this.flags | QUEUED : this.flags & ~QUEUED;
  }

  /** Waiting for its epoch time (set by DelayedJobs). */
  get delayed(): boolean {
    return (this.flags & DELAYED) !== 0;
  }

  setDelayed(on: boolean): void {
    this.flags = on ? this.flags | DELAYED : this.flags & ~DELAYED;
  }

  /** Cancelled while running: its worker's result goes nowhere. */
  get ignored(): boolean {
    return (this.flags & IGNORED) !== 0;
  }

  ignore(): void {
    this.flags |= IGNORED;
  }

  get retries(): number {
    return this.flags >>> RETRY_SHIFT;
  }

  addRetry(): number {
    if (this.retries < MAX_RETRIES) this.flags += 1 << RETRY_SHIFT;
    return this.retries;
  }

  /** What the job's worker is doing with it; undefined while it is not running. */
  get run(): RunState | undefined {
    return this.runState;
  }

  /** A worker took the job, given it under `handle`. */
  start(worker: JobPeer, handle: string): RunState {
    this.runState = new RunState(worker, handle);
    return this.runState;
  }

  /** The job stopped running (it ended, or goes back to its queue); returns what it was doing. */
  stop(): RunState | undefined {
    const run = this.runState;
    this.runState = undefined;
    return run;
  }

  /** The peers waiting for the result, in submit order; undefined when none. */
  get clients(): readonly JobPeer[] | undefined {
    return this.waiters;
  }

  addClient(client: JobPeer): void {
    if (this.waiters) this.waiters.push(client);
    else this.waiters = [client];
  }

  /** Takes every place of one peer out of the waiting list. */
  removeClient(client: JobPeer): void {
    if (!this.waiters) return;
    const rest = this.waiters.filter((waiter) => waiter !== client);
    this.waiters = rest.length > 0 ? rest : undefined;
  }

  /** Empties the waiting list and returns it. */
  takeClients(): JobPeer[] | undefined {
    const waiters = this.waiters;
    this.waiters = undefined;
    return waiters;
  }
}
