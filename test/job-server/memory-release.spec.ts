import { jest } from '@jest/globals';
import { getHeapStatistics } from 'node:v8';
import { collectGarbageReducingMemory, MemoryRelease, type MemoryReleaseThresholds } from '../../lib/job-server/memory-release.js';

const MIB = 1024 * 1024;
const thresholds: MemoryReleaseThresholds = {
  checkEveryMs: 1000,
  minDrainedJobs: 1000,
  minHeapGrowthBytes: 64 * MIB,
  maxChangesWhenIdle: 100,
};

/** A server's counts as the release reads them, moved by the test; releases are counted. */
class FakeServer {
  jobs = 0;
  created = 0;
  heap = 20 * MIB;
  releases = 0;
  /** What the heap falls to when a release runs. */
  heapAfterRelease = 20 * MIB;
  readonly release = new MemoryRelease(
    { jobs: () => this.jobs, jobsCreated: () => this.created, committedHeap: () => this.heap },
    async () => {
      this.releases++;
      this.heap = this.heapAfterRelease;
    },
    thresholds,
  );

  submit(count: number, bytesEach = 300): void {
    this.jobs += count;
    this.created += count;
    this.heap += count * bytesEach;
  }

  finish(count: number): void {
    this.jobs -= count;
  }

  /** One check interval passes (and the release's promise settles). */
  async tick(): Promise<void> {
    await jest.advanceTimersByTimeAsync(thresholds.checkEveryMs);
  }
}

describe('MemoryRelease', () => {
  let server: FakeServer;
  beforeEach(() => {
    jest.useFakeTimers();
    server = new FakeServer();
    server.release.start();
  });
  afterEach(() => {
    server.release.stop();
    jest.useRealTimers();
  });

  test('releases once after a large queue drained and a check found the server idle, then not again', async () => {
    server.submit(1_000_000);
    await server.tick();
    server.finish(600_000);
    await server.tick();
    server.finish(400_000);
    await server.tick(); // the drain's last jobs ended during this check: busy
    expect(server.releases).toBe(0);
    await server.tick();
    expect(server.releases).toBe(1);
    for (let i = 0; i < 10; i++) await server.tick();
    expect(server.releases).toBe(1);
  });

  test('a trickle of jobs still counts as idle; a steady stream does not', async () => {
    server.submit(500_000);
    await server.tick();
    server.finish(500_000);
    await server.tick();
    for (let i = 0; i < 5; i++) {
      server.submit(60);
      server.finish(60);
      await server.tick(); // 120 changes a second: busy
    }
    expect(server.releases).toBe(0);
    server.submit(10);
    server.finish(10);
    await server.tick();
    expect(server.releases).toBe(1);
  });

  test('no release while the queue still holds more than half of its peak', async () => {
    server.submit(1_000_000);
    await server.tick();
    server.finish(400_000);
    for (let i = 0; i < 5; i++) await server.tick();
    expect(server.releases).toBe(0);
    server.finish(200_000);
    await server.tick();
    await server.tick();
    expect(server.releases).toBe(1);
  });

  test('a queue that filled and drained between two checks counts as drained', async () => {
    server.submit(1_000_000);
    server.finish(1_000_000);
    await server.tick(); // busy: a million jobs came and went
    expect(server.releases).toBe(0);
    await server.tick();
    expect(server.releases).toBe(1);
  });

  test('no release for a drained queue that grew the heap little', async () => {
    server.submit(100_000); // 30 MB
    await server.tick();
    server.finish(100_000);
    for (let i = 0; i < 5; i++) await server.tick();
    expect(server.releases).toBe(0);
  });

  test('no release for a few jobs, however large', async () => {
    server.submit(500, 1 * MIB); // 500 MB in fewer than minDrainedJobs jobs
    await server.tick();
    server.finish(500);
    for (let i = 0; i < 5; i++) await server.tick();
    expect(server.releases).toBe(0);
  });

  test('after a release, the next large drain releases again, measured from the heap the release left', async () => {
    server.submit(1_000_000);
    await server.tick();
    server.finish(1_000_000);
    await server.tick();
    await server.tick();
    expect(server.releases).toBe(1);
    server.heapAfterRelease = 200 * MIB; // this time something else keeps 200 MiB alive
    server.submit(1_000_000);
    await server.tick();
    server.finish(1_000_000);
    await server.tick();
    await server.tick();
    expect(server.releases).toBe(2);
    server.submit(150_000); // 45 MB above the 200 MiB left: not worth a pause
    await server.tick();
    server.finish(150_000);
    for (let i = 0; i < 5; i++) await server.tick();
    expect(server.releases).toBe(2);
  });

  test('stop() ends the checks', async () => {
    server.submit(1_000_000);
    await server.tick();
    server.finish(1_000_000);
    server.release.stop();
    for (let i = 0; i < 5; i++) await server.tick();
    expect(server.releases).toBe(0);
  });
});

describe('collectGarbageReducingMemory', () => {
  test('collects what is unreachable and gives the heap it held back', async () => {
    // A million objects nothing refers to once this function returns; one of them watched.
    const watched = ((garbage: object[]) => new WeakRef(garbage[0]))(
      Array.from({ length: 1_000_000 }, (_, i) => ({ i, text: `job ${i}` })),
    );
    const before = getHeapStatistics().total_heap_size;
    // A WeakRef's target stays alive until the end of the turn that made it.
    await new Promise((resolve) => setImmediate(resolve));
    const ms = await collectGarbageReducingMemory();
    expect(ms).toEqual(expect.any(Number));
    expect(watched.deref()).toBeUndefined();
    expect(getHeapStatistics().total_heap_size).toBeLessThan(before - 16 * MIB);
  });
});
