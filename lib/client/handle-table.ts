import type { TrackedJob } from './client-job.js';

/**
 * Several submits of one job (coalesced by unique id) on one connection. The server keeps one
 * client entry per submit and sends each WORK_* packet once per entry, back to back, so copies are
 * dealt out in turn: every submit sees every packet once. A released job keeps its seat (empty)
 * so the count stays right.
 */
class SharedHandle {
  private next = 0;

  constructor(readonly seats: (TrackedJob | undefined)[]) {}

  add(job: TrackedJob | undefined): void {
    this.seats.push(job);
    this.next = 0;
  }

  /** The seat the next copy of a packet belongs to (undefined for a released job). */
  take(): TrackedJob | undefined {
    const job = this.seats[this.next];
    this.next = (this.next + 1) % this.seats.length;
    return job;
  }

  vacate(job: TrackedJob): boolean {
    const index = this.seats.indexOf(job);
    if (index !== -1) this.seats[index] = undefined;
    return this.seats.every((seat) => seat === undefined);
  }

  live(): TrackedJob[] {
    return this.seats.filter((seat): seat is TrackedJob => seat !== undefined);
  }
}

/** Foreground jobs on one connection by handle, for routing WORK_* packets. */
export class HandleTable {
  private readonly entries = new Map<string, TrackedJob | SharedHandle>();

  has(handle: string): boolean {
    return this.entries.has(handle);
  }

  /** JOB_CREATED for a live job. */
  add(handle: string, job: TrackedJob): void {
    const entry = this.entries.get(handle);
    if (entry === undefined) this.entries.set(handle, job);
    else if (entry instanceof SharedHandle) entry.add(job);
    else this.entries.set(handle, new SharedHandle([entry, job]));
  }

  /** JOB_CREATED for a job released before it: it needs a seat only if it shares the handle. */
  addReleased(handle: string): void {
    const entry = this.entries.get(handle);
    if (entry === undefined) return;
    if (entry instanceof SharedHandle) entry.add(undefined);
    else this.entries.set(handle, new SharedHandle([entry, undefined]));
  }

  /** The job a streaming packet (WORK_DATA, WORK_WARNING, WORK_STATUS) for the handle goes to. */
  route(handle: string): TrackedJob | undefined {
    const entry = this.entries.get(handle);
    return entry instanceof SharedHandle ? entry.take() : entry;
  }

  /** A final packet: every live job of the handle ends; later copies find nothing. */
  end(handle: string): TrackedJob[] {
    const entry = this.entries.get(handle);
    if (entry === undefined) return [];
    this.entries.delete(handle);
    return entry instanceof SharedHandle ? entry.live() : [entry];
  }

  /** A released job: its packets are dropped from now on. */
  forget(handle: string, job: TrackedJob): void {
    const entry = this.entries.get(handle);
    if (entry === job) this.entries.delete(handle);
    else if (entry instanceof SharedHandle && entry.vacate(job)) this.entries.delete(handle);
  }

  /** Empties the table, returning every live job. */
  takeAll(): TrackedJob[] {
    const jobs: TrackedJob[] = [];
    for (const entry of this.entries.values()) {
      if (entry instanceof SharedHandle) jobs.push(...entry.live());
      else jobs.push(entry);
    }
    this.entries.clear();
    return jobs;
  }
}
