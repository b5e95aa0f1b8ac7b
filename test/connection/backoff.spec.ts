import { Backoff } from '../../lib/connection/backoff.js';

describe('Backoff', () => {
  test('doubles from the initial delay up to the cap', () => {
    const backoff = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000 });
    expect(Array.from({ length: 6 }, () => backoff.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });

  test('gives up after maxAttempts; 0 means never retry', () => {
    const backoff = new Backoff({ initialDelayMs: 1, maxAttempts: 2 });
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([1, 2, undefined]);
    expect(new Backoff({ maxAttempts: 0 }).next()).toBeUndefined();
  });

  test('defaults: 100 ms doubling to 10 s, without end', () => {
    const backoff = new Backoff();
    const delays = Array.from({ length: 100 }, () => backoff.next());
    expect(delays.slice(0, 3)).toEqual([100, 200, 400]);
    expect(delays[99]).toBe(10_000);
  });
});
