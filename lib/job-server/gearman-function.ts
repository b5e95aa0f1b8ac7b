import { type Job, type Priority, PRIORITY_COUNT } from './job.js';
import { JobIndex } from './job-index.js';

/** A worker asleep (PRE_SLEEP) that a job of this function must wake: the broker's PeerState. */
export interface Sleeper {
  /** Jobs arrived: send NOOP, unless one is already on its way. */
  wake(): void;
}

/**
 * One function name: its run queues (one FIFO per priority), its counters for `status` and
 * `prioritystatus`, its `maxqueue` limits, the workers registered for it and asleep on it, and the
 * indexes that coalesce submits by unique id. Its jobs move through it in this order: add, then
 * enqueue (at once or when due), start (a worker took it), then stop (its run ended) followed by
 * requeue or remove; a job that never ran is removed from the queue or the delay.
 */
export class GearmanFunction {
  private readonly heads: (Job | undefined)[] = [undefined, undefined, undefined];
  private readonly tails: (Job | undefined)[] = [undefined, undefined, undefined];
  /** Jobs waiting per priority, epoch jobs not yet due included (as gearmand counts them). */
  private readonly waitingCounts = [0, 0, 0];
  private totalCount = 0;
  private runningCount = 0;
  /** Per-priority limits from `maxqueue` (or the server's default); 0 means none. */
  private limits: readonly number[];
  /** CAN_DO registrations of this function still in force: gearmand counts a repeated CAN_DO again. */
  private registrationCount = 0;
  /** Workers that went to sleep while they could do this function and have not been woken since. */
  private readonly sleepers = new Set<Sleeper>();
  /** Jobs by explicit unique id. */
  private readonly byUnique = new JobIndex('unique');
  /** Jobs submitted with unique `-`, by payload. */
  private readonly byPayload = new JobIndex('payload');
  /** Admin `pause function`: its jobs stay queued and no worker gets one until `resume function`. */
  private pausedFlag = false;

  /** `maxQueued`: the limit of every priority until `maxqueue` sets them; 0 = none. */
  constructor(
    readonly name: string,
    maxQueued = 0,
  ) {
    this.limits = [maxQueued, maxQueued, maxQueued];
  }

  /** Queued plus running jobs (the `status` TOTAL column). */
  get total(): number {
    return this.totalCount;
  }

  get running(): number {
    return this.runningCount;
  }

  /** Jobs of one priority waiting for a worker, epoch jobs not yet due included. */
  waiting(priority: Priority): number {
    return this.waitingCounts[priority];
  }

  /** Registrations in force (the `status` AVAILABLE_WORKERS column). */
  get registrations(): number {
    return this.registrationCount;
  }

  register(): void {
    this.registrationCount++;
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  pause(): void {
    this.pausedFlag = true;
  }

  resume(): void {
    this.pausedFlag = false;
  }

  unregister(count: number): void {
    this.registrationCount -= count;
  }

  /** `maxqueue`: one limit per priority, 0 for none. */
  setMaxQueue(limits: readonly [number, number, number]): void {
    this.limits = [...limits];
  }

  /** Whether a new job of this priority would overflow the `maxqueue` limit (which counts every job of the function). */
  isFull(priority: Priority): boolean {
    const limit = this.limits[priority];
    return limit > 0 && this.totalCount >= limit;
  }

  addSleeper(sleeper: Sleeper): void {
    this.sleepers.add(sleeper);
  }

  removeSleeper(sleeper: Sleeper): void {
    this.sleepers.delete(sleeper);
  }

  /** Wakes every worker asleep on this function, in the order they went to sleep, and forgets them. */
  wakeSleepers(): void {
    if (this.sleepers.size === 0) return;
    for (const sleeper of this.sleepers) sleeper.wake();
    this.sleepers.clear();
  }

  /** The oldest runnable job of the highest priority, without taking it. */
  peek(): Job | undefined {
    for (let priority = 0; priority < PRIORITY_COUNT; priority++) {
      const head = this.heads[priority];
      if (head) return head;
    }
    return undefined;
  }

  /** The job a submit with this unique id and payload joins, if any (gearmand's rules). */
  findCoalescing(unique: string, data: string): Job | undefined {
    if (unique === '') return undefined;
    if (unique === '-') return data === '' ? undefined : this.byPayload.get(data);
    return this.byUnique.get(unique);
  }

  /** A job by its explicit unique id (GET_STATUS_UNIQUE). */
  findByUnique(unique: string): Job | undefined {
    return this.byUnique.get(unique);
  }

  /** Counts a new job as waiting and indexes it for coalescing (findCoalescing has just found none). */
  add(job: Job): void {
    this.totalCount++;
    this.waitingCounts[job.priority]++;
    this.indexFor(job)?.add(job);
  }

  /** Appends a waiting job to the tail of its priority's queue. */
  enqueue(job: Job): void {
    const priority = job.priority;
    const tail = this.tails[priority];
    job.prev = tail;
    job.next = undefined;
    if (tail) tail.next = job;
    else this.heads[priority] = job;
    this.tails[priority] = job;
    job.setQueued(true);
  }

  /** A worker took a queued job. */
  start(job: Job): void {
    this.unlink(job);
    this.waitingCounts[job.priority]--;
    this.runningCount++;
  }

  /** A job's run ended; requeue or remove follows. */
  stop(): void {
    this.runningCount--;
  }

  /** A job whose run ended waits again, at the tail of its queue. */
  requeue(job: Job): void {
    this.waitingCounts[job.priority]++;
    this.enqueue(job);
  }

  /** Forgets a job that is not running: out of its queue (or counted out of the delay), its index and the total. */
  remove(job: Job): void {
    if (job.queued) {
      this.unlink(job);
      this.waitingCounts[job.priority]--;
    } else if (job.delayed) {
      this.waitingCounts[job.priority]--;
    }
    this.indexFor(job)?.delete(job);
    this.totalCount--;
  }

  /** Every queued job, highest priority first (for dropping the function). */
  *queuedJobs(): IterableIterator<Job> {
    for (let priority = 0; priority < PRIORITY_COUNT; priority++) {
      for (let job = this.heads[priority]; job; job = job.next) yield job;
    }
  }

  /** Removes a queued job from wherever it is in its queue. */
  private unlink(job: Job): void {
    const priority = job.priority;
    if (job.prev) job.prev.next = job.next;
    else this.heads[priority] = job.next;
    if (job.next) job.next.prev = job.prev;
    else this.tails[priority] = job.prev;
    job.prev = undefined;
    job.next = undefined;
    job.setQueued(false);
  }

  private indexFor(job: Job): JobIndex | undefined {
    const length = job.uniqueLength;
    if (length === 0) return undefined;
    if (length === 1 && job.body.charCodeAt(0) === 0x2d /* - */) return job.body.length > 1 ? this.byPayload : undefined;
    return this.byUnique;
  }
}
