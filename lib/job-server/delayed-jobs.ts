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
 * and is skipped when its entry comes up.
 */
export class DelayedJobs {
  private readonly heap: Entry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor(private readonly onDue: (job: Job) => void) {}

  add(job: Job, at: number): void {
    job.delayed = true;
    const heap = this.heap;
    heap.push({ at, job });
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent].at <= heap[index].at) break;
      [heap[parent], heap[index]] = [heap[index], heap[parent]];
      index = parent;
    }
    this.arm();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    this.heap.length = 0;
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
        job.delayed = false;
        this.onDue(job);
      }
    }
    this.arm();
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
