import type { Job } from './job.js';

const PAGE_SIZE = 256;

interface Page {
  readonly slots: (Job | undefined)[];
  live: number;
}

/**
 * Jobs by the counter in their handle. Counters are handed out in order, so jobs live in pages
 * of 256 consecutive ids: 8 bytes a job instead of a hash-map entry's ~40. A page goes when its
 * last job does; a job that outlives its neighbours keeps at most one 2 KiB page alive.
 */
export class JobTable {
  private readonly pages = new Map<number, Page>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(id: number): Job | undefined {
    return this.pages.get(Math.floor(id / PAGE_SIZE))?.slots[id % PAGE_SIZE];
  }

  add(job: Job): void {
    const key = Math.floor(job.id / PAGE_SIZE);
    let page = this.pages.get(key);
    if (!page) {
      page = { slots: new Array<Job | undefined>(PAGE_SIZE).fill(undefined), live: 0 };
      this.pages.set(key, page);
    }
    page.slots[job.id % PAGE_SIZE] = job;
    page.live++;
    this.count++;
  }

  delete(job: Job): void {
    const key = Math.floor(job.id / PAGE_SIZE);
    const page = this.pages.get(key);
    if (!page || page.slots[job.id % PAGE_SIZE] !== job) return;
    page.slots[job.id % PAGE_SIZE] = undefined;
    this.count--;
    if (--page.live === 0) this.pages.delete(key);
  }

  /** Every job, oldest first. */
  *values(): IterableIterator<Job> {
    for (const page of this.pages.values()) {
      for (const job of page.slots) if (job) yield job;
    }
  }
}
