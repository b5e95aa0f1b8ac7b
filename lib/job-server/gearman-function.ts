import { Job, Priority, PRIORITY_COUNT } from './job.js';
import { JobIndex } from './job-index.js';
import type { ServerConnection } from './server-connection.js';

/**
 * One function name: its run queues (one FIFO per priority), its counters for `status`, the
 * workers that can do it, and the indexes that coalesce submits by unique id.
 */
export class GearmanFunction {
  private readonly heads: (Job | undefined)[] = [undefined, undefined, undefined];
  private readonly tails: (Job | undefined)[] = [undefined, undefined, undefined];
  /** Jobs waiting per priority, epoch jobs not yet due included (as gearmand counts them). */
  readonly waiting = [0, 0, 0];
  /** Queued plus running. */
  total = 0;
  running = 0;
  /** Per-priority limits from `maxqueue`; 0 means none. */
  maxQueue = [0, 0, 0];
  /** CAN_DO registrations of this function still in force: gearmand counts a repeated CAN_DO again. */
  registrations = 0;
  /** Workers that went to sleep while they could do this function and have not been woken since. */
  readonly sleepers = new Set<ServerConnection>();
  /** Jobs by explicit unique id. */
  readonly byUnique = new JobIndex('unique');
  /** Jobs submitted with unique `-`, by payload. */
  readonly byPayload = new JobIndex('payload');

  constructor(readonly name: string) {}

  /** The oldest runnable job of the highest priority, without taking it. */
  peek(): Job | undefined {
    for (let priority = 0; priority < PRIORITY_COUNT; priority++) {
      const head = this.heads[priority];
      if (head) return head;
    }
    return undefined;
  }

  /** Appends a job to the tail of its priority's queue. */
  push(job: Job): void {
    const priority = job.priority;
    const tail = this.tails[priority];
    job.prev = tail;
    job.next = undefined;
    if (tail) tail.next = job;
    else this.heads[priority] = job;
    this.tails[priority] = job;
    job.queued = true;
  }

  /** Removes a queued job from wherever it is in its queue. */
  unlink(job: Job): void {
    const priority = job.priority;
    if (job.prev) job.prev.next = job.next;
    else this.heads[priority] = job.next;
    if (job.next) job.next.prev = job.prev;
    else this.tails[priority] = job.prev;
    job.prev = undefined;
    job.next = undefined;
    job.queued = false;
  }

  /** The job a submit with this unique id and payload joins, if any (gearmand's rules). */
  findCoalescing(unique: string, data: string): Job | undefined {
    if (unique === '') return undefined;
    if (unique === '-') return data === '' ? undefined : this.byPayload.get(data);
    return this.byUnique.get(unique);
  }

  /** Indexes a new job for coalescing; findCoalescing has just found no job with its key. */
  index(job: Job): void {
    this.indexFor(job)?.add(job);
  }

  unindex(job: Job): void {
    this.indexFor(job)?.delete(job);
  }

  private indexFor(job: Job): JobIndex | undefined {
    const length = job.uniqueLength;
    if (length === 0) return undefined;
    if (length === 1 && job.body.charCodeAt(0) === 0x2d /* - */) return job.body.length > 1 ? this.byPayload : undefined;
    return this.byUnique;
  }

  /** Whether a new job of this priority would overflow the `maxqueue` limit. */
  isFull(priority: Priority): boolean {
    const limit = this.maxQueue[priority];
    return limit > 0 && this.total >= limit;
  }

  /** Every queued job, highest priority first (for dropping the function). */
  *queuedJobs(): IterableIterator<Job> {
    for (let priority = 0; priority < PRIORITY_COUNT; priority++) {
      for (let job = this.heads[priority]; job; job = job.next) yield job;
    }
  }
}
