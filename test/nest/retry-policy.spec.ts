import { checkRetryOptions, readRetryEnvelope, retryDelayMs, retryUnique } from '../../lib/nest/retry-policy.js';

describe('retry policy', () => {
  test('fixed back-off waits the same each time; exponential doubles from the delay', () => {
    const fixed = { type: 'fixed' as const, delayMs: 1000 };
    expect([1, 2, 3].map((attempt) => retryDelayMs(fixed, attempt, 0))).toEqual([1000, 1000, 1000]);
    const exponential = { type: 'exponential' as const, delayMs: 1000 };
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(exponential, attempt, 0))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(undefined, 3)).toBe(0);
  });

  test('jitter takes up to its fraction off at random; maxDelayMs caps the wait', () => {
    const backoff = { type: 'exponential' as const, delayMs: 1000, jitter: 0.5, maxDelayMs: 5000 };
    expect(retryDelayMs(backoff, 1, 0)).toBe(1000);
    expect(retryDelayMs(backoff, 1, 0.999)).toBe(500);
    expect(retryDelayMs(backoff, 10, 0)).toBe(5000);
    for (let i = 0; i < 100; i++) {
      const delay = retryDelayMs(backoff, 2);
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThanOrEqual(2000);
    }
  });

  test('each attempt’s unique id derives from the first; a long one is hashed to stay within 64 bytes', () => {
    expect(retryUnique('order-42', 2)).toBe('order-42#2');
    const long = 'x'.repeat(64);
    expect(retryUnique(long, 2)).toMatch(/^#[0-9a-f]{40}#2$/);
    expect(retryUnique(long, 3)).toBe(`${retryUnique(long, 2).slice(0, -1)}3`);
    expect(Buffer.byteLength(retryUnique(long, 1000))).toBeLessThanOrEqual(64);
  });

  test('bad options are refused with what is wrong', () => {
    expect(() => checkRetryOptions({ attempts: 0 }, 'here')).toThrow('here: retry attempts must be a whole number from 1 to 1000, got 0');
    expect(() => checkRetryOptions({ attempts: 2, backoff: { type: 'linear' as 'fixed', delayMs: 1 } }, 'here')).toThrow(
      `here: backoff type must be 'fixed' or 'exponential', got "linear"`,
    );
    expect(() => checkRetryOptions({ attempts: 2, backoff: { type: 'fixed', delayMs: -1 } }, 'here')).toThrow('backoff delayMs');
    expect(() => checkRetryOptions({ attempts: 2, backoff: { type: 'fixed', delayMs: 1, jitter: 2 } }, 'here')).toThrow('backoff jitter');
    expect(checkRetryOptions({ attempts: 2, backoff: { type: 'fixed', delayMs: 5 } }, 'here')).toEqual({
      attempts: 2,
      backoff: { type: 'fixed', delayMs: 5 },
    });
  });

  test('an envelope’s retry field is read when well formed, ignored otherwise', () => {
    expect(readRetryEnvelope({ attempts: 3, attempt: 2, origin: { unique: 'u', handle: 'H:x:1' } })).toEqual({
      attempts: 3,
      attempt: 2,
      origin: { unique: 'u', handle: 'H:x:1' },
    });
    expect(readRetryEnvelope({ attempts: 3 })).toEqual({ attempts: 3, attempt: 1 });
    expect(readRetryEnvelope({ attempts: 'three' })).toBeUndefined();
    expect(readRetryEnvelope({ attempts: 3, attempt: 0 })).toBeUndefined();
    expect(readRetryEnvelope(null)).toBeUndefined();
  });
});
