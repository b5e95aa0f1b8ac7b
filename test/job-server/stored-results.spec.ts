import { resultBytes, resultRetention, StoredResults, type StoredResult } from '../../lib/job-server/stored-results.js';

let counter = 0;
function result(overrides: Partial<StoredResult> = {}): StoredResult {
  counter++;
  return {
    handle: `H:t:${counter}`,
    unique: `u-${counter}`,
    functionName: 'f',
    outcome: 'complete',
    payload: 'result',
    parts: [],
    numerator: 0,
    denominator: 0,
    createdAt: Date.now(),
    endedAt: Date.now(),
    dropped: false,
    ...overrides,
  };
}

const roomy = { maxAgeMs: 3_600_000, maxCount: 1000, maxBytes: 1 << 30, maxResultBytes: 1 << 20 };

describe('StoredResults', () => {
  test('finds a result by handle, and by unique id the newest holding it', () => {
    const results = new StoredResults(roomy);
    const first = result({ unique: 'same' });
    const second = result({ unique: 'same' });
    results.add(first);
    results.add(second);
    expect(results.find(first.handle)).toBe(first);
    expect(results.find('same')).toBe(second);
    expect(results.find('nothing')).toBeUndefined();
    results.close();
  });

  test('drops the oldest past maxCount and past maxBytes, and remembers what it dropped', () => {
    const byCount = new StoredResults({ ...roomy, maxCount: 2 });
    const [a, b, c] = [result(), result(), result()];
    for (const each of [a, b, c]) byCount.add(each);
    expect(byCount.count).toBe(2);
    expect(byCount.find(a.handle)).toBeUndefined();
    expect(byCount.wasDropped(a.handle) && byCount.wasDropped(a.unique)).toBe(true);
    expect(byCount.wasDropped(b.handle)).toBe(false);
    byCount.close();

    const big = result({ payload: 'x'.repeat(1000) });
    const byBytes = new StoredResults({ ...roomy, maxBytes: 2 * resultBytes(big) + 10 });
    const bigs = [big, result({ payload: 'x'.repeat(1000) }), result({ payload: 'x'.repeat(1000) })];
    for (const each of bigs) byBytes.add(each);
    expect([...byBytes.values()]).toEqual(bigs.slice(1));
    expect(byBytes.bytes).toBe(2 * resultBytes(big));
    byBytes.close();
  });

  test('a result kept again under its handle is the newest: the one dropped next is the other', () => {
    const results = new StoredResults({ ...roomy, maxCount: 2 });
    const [a, b] = [result(), result()];
    results.add(a);
    results.add(b);
    const aAgain = { ...a, payload: 'second outcome' };
    results.add(aAgain);
    results.add(result());
    expect(results.find(b.handle)).toBeUndefined();
    expect(results.find(a.handle)).toBe(aAgain);
    expect(results.count).toBe(2);
    results.close();
  });

  test('remembers the last 10,000 ids it dropped, an id dropped again counting from its last drop', () => {
    const results = new StoredResults({ ...roomy, maxCount: 1 });
    const first = result();
    results.add(first);
    for (let n = 0; n < 30_000; n++) {
      results.add(result());
      // The first one's handle comes back and is dropped again now and then.
      if (n % 7_000 === 0) results.add({ ...first, endedAt: Date.now() });
    }
    // Dropped last at n = 28,000, then 2,000 more results (4,000 ids) went: still remembered.
    expect(results.wasDropped(first.handle)).toBe(true);
    for (let n = 0; n < 5_000; n++) results.add(result());
    expect(results.wasDropped(first.handle)).toBe(false);
    results.close();
  });

  test('expires results on a timer, without any new result arriving', async () => {
    const results = new StoredResults({ ...roomy, maxAgeMs: 60 });
    const old = result();
    results.add(old);
    results.add(result({ endedAt: Date.now() + 10_000 }));
    expect(results.count).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(results.find(old.handle)).toBeUndefined();
    expect(results.wasDropped(old.handle)).toBe(true);
    expect(results.count).toBe(1);
    results.close();
  });

  test('tells a persistence what it keeps and what it drops', () => {
    const saved: string[] = [];
    const deleted: string[] = [];
    const results = new StoredResults(
      { ...roomy, maxCount: 1 },
      { saved: (r) => saved.push(r.handle), deleted: (h) => deleted.push(...h) },
    );
    const [a, b] = [result(), result()];
    results.add(a);
    results.add(b);
    results.add(result(), { persist: false });
    expect(saved).toEqual([a.handle, b.handle]);
    expect(deleted).toEqual([a.handle, b.handle]);
    results.close();
  });

  test('refuses retention settings that would disable a bound', () => {
    expect(resultRetention()).toEqual({ maxAgeMs: 86_400_000, maxCount: 100_000, maxBytes: 67_108_864, maxResultBytes: 16_777_216 });
    expect(() => resultRetention({ maxCount: 0 })).toThrow(RangeError);
    expect(() => resultRetention({ maxAgeMs: Infinity })).toThrow(/maxAgeMs/);
    expect(() => resultRetention({ maxBytes: 10, maxResultBytes: 20 })).toThrow(/cannot be over/);
  });
});
