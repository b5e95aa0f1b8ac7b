import { gearmandHash, inGearmandOrder } from '../../lib/job-server/gearmand-order.js';

describe("gearmand's hash-table order", () => {
  test('the hash works on signed bytes in 32-bit arithmetic, and never returns 0', () => {
    expect(gearmandHash('')).toBe(1);
    expect(gearmandHash('\xe9')).not.toBe(gearmandHash('\x69'));
    for (const key of ['a', 'status', 'H:host:123', '\xff'.repeat(100)]) {
      const hash = gearmandHash(key);
      expect(Number.isInteger(hash) && hash > 0 && hash <= 0xffffffff).toBe(true);
    }
  });

  test('items sort by bucket, the newest first within a bucket', () => {
    // Keys that share a bucket: found by search so the test does not depend on a hand-picked pair.
    const buckets = new Map<number, string[]>();
    let pair: string[] | undefined;
    for (let i = 0; !pair; i++) {
      const key = `k${i}`;
      const bucket = gearmandHash(key) % 991;
      const keys = buckets.get(bucket) ?? [];
      keys.push(key);
      buckets.set(bucket, keys);
      if (keys.length === 2) pair = keys;
    }
    expect(inGearmandOrder(pair, (key) => key)).toEqual([pair[1], pair[0]]);
    const spread = ['x', 'y', 'z', 'w'];
    const ordered = inGearmandOrder(spread, (key) => key);
    const bucketsInOrder = ordered.map((key) => gearmandHash(key) % 991);
    expect([...bucketsInOrder].sort((a, b) => a - b)).toEqual(bucketsInOrder);
  });
});
