import type { Job } from './job.js';

/** Which part of a job's body is its key: the unique id, or (for unique `-`) the payload. */
export type KeyPart = 'unique' | 'payload';

const MIN_CAPACITY = 16;

/**
 * Jobs by a key held in their own body: an open-addressing hash table (linear probing,
 * backward-shift deletion) of job references only, 8 bytes a slot at most 3/4 full, where a Map
 * would keep a key string and ~40 bytes an entry. It shrinks as it empties, so a drained queue
 * gives its memory back. Keys are compared in place, without slicing the body.
 */
export class JobIndex {
  private slots: (Job | undefined)[] = new Array<Job | undefined>(MIN_CAPACITY).fill(undefined);
  private count = 0;

  constructor(private readonly part: KeyPart) {}

  get size(): number {
    return this.count;
  }

  get(key: string): Job | undefined {
    const mask = this.slots.length - 1;
    for (let slot = hashString(key) & mask; ; slot = (slot + 1) & mask) {
      const job = this.slots[slot];
      if (job === undefined) return undefined;
      if (this.matches(job, key)) return job;
    }
  }

  /** Adds a job whose key is not in the index yet. */
  add(job: Job): void {
    if ((this.count + 1) * 4 > this.slots.length * 3) this.resize(this.slots.length * 2);
    this.place(job);
    this.count++;
  }

  /** Removes this job if the index holds it. */
  delete(job: Job): void {
    const slots = this.slots;
    const mask = slots.length - 1;
    let hole = this.hashJob(job) & mask;
    while (slots[hole] !== job) {
      if (slots[hole] === undefined) return;
      hole = (hole + 1) & mask;
    }
    slots[hole] = undefined;
    this.count--;
    // Pull later members of the cluster back over the hole so every probe chain stays unbroken.
    for (let slot = (hole + 1) & mask; slots[slot] !== undefined; slot = (slot + 1) & mask) {
      const home = this.hashJob(slots[slot]!) & mask;
      const distanceToHome = (slot - home) & mask;
      const distanceToHole = (slot - hole) & mask;
      if (distanceToHome >= distanceToHole) {
        slots[hole] = slots[slot];
        slots[slot] = undefined;
        hole = slot;
      }
    }
    if (this.slots.length > MIN_CAPACITY && this.count * 8 < this.slots.length) this.resize(this.slots.length / 2);
  }

  private place(job: Job): void {
    const mask = this.slots.length - 1;
    let slot = this.hashJob(job) & mask;
    while (this.slots[slot] !== undefined) slot = (slot + 1) & mask;
    this.slots[slot] = job;
  }

  private resize(capacity: number): void {
    const old = this.slots;
    this.slots = new Array<Job | undefined>(capacity).fill(undefined);
    for (const job of old) if (job !== undefined) this.place(job);
  }

  private start(job: Job): number {
    return this.part === 'unique' ? 0 : job.uniqueLength;
  }

  private end(job: Job): number {
    return this.part === 'unique' ? job.uniqueLength : job.body.length;
  }

  private matches(job: Job, key: string): boolean {
    const start = this.start(job);
    if (this.end(job) - start !== key.length) return false;
    const body = job.body;
    for (let i = 0; i < key.length; i++) if (body.charCodeAt(start + i) !== key.charCodeAt(i)) return false;
    return true;
  }

  private hashJob(job: Job): number {
    return hashRange(job.body, this.start(job), this.end(job));
  }
}

/** FNV-1a over character codes (bytes, for latin1 byte strings). */
function hashRange(text: string, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function hashString(text: string): number {
  return hashRange(text, 0, text.length);
}
