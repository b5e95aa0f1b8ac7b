import type { Job } from './job.js';

interface Entry {
  readonly at: number;
  readonly job: Job;
}

/** Longest single setTimeout Node accepts; later times are reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Epoch jobs waiting for their time: a binary min-heap on the due time and one timer for the
 * earliest. A job taken out early (cancelled, function dropped) has its `delayed` flag cleared
 * and is skipped when its entry comes up; once such entries are half the heap, it is rebuilt
 * without them, so far-future jobs cancelled in bulk do not stay in memory.
 */
export class DelayedJobs {
  private readonly heap: Entry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stale = 0;

  constructor(private readonly onDue: (job: Job) => void) {}

  add(job: Job, at: number): void {
    job.setDelayed(true);
    this.heap.push({ at, job });
    this.siftUp(this.heap.length - 1);
    this.arm();
  }

  /** Takes a waiting job out (its entry is dropped lazily). */
  remove(job: Job): void {
    if (!job.delayed) return;
    job.setDelayed(false);
    if (++this.stale * 2 > this.heap.length) {
      const live = this.heap.filter((entry) => entry.job.delayed);
      this.heap.length = 0;
      this.stale = 0;
      for (const entry of live) {
        this.heap.push(entry);
        this.siftUp(this.heap.length - 1);
      }
    }
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    this.heap.length = 0;
    this.stale = 0;
  }

  private arm(): void {
    const first = this.heap[0];
    if (!first || first.at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = first.at;
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(first.at - Date.now(), 0), MAX_TIMER_MS));
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      const { job } = this.pop();
      if (job.delayed) {
        job.setDelayed(false);
        this.onDue(job);
      } else {
        this.stale--;
      }
    }
    this.arm();
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent].at <= heap[index].at) break;
      [heap[parent], heap[index]] = [heap[index], heap[parent]];
      index = parent;
    }
  }

  private pop(): Entry {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let smallest = index;
        if (left < heap.length && heap[left].at < heap[smallest].at) smallest = left;
        if (right < heap.length && heap[right].at < heap[smallest].at) smallest = right;
        if (smallest === index) break;
        [heap[smallest], heap[index]] = [heap[index], heap[smallest]];
        index = smallest;
      }
    }
    return top;
  }
}
