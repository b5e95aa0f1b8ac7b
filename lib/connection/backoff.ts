export interface ReconnectOptions {
  /** Delay before the first reconnect attempt; default 100 ms. */
  initialDelayMs?: number;
  /** The delay doubles after each failed attempt up to this; default 10 000 ms. */
  maxDelayMs?: number;
  /** Attempts before giving up; default unlimited. 0 turns reconnecting off. */
  maxAttempts?: number;
}

/** Exponential back-off: initial, 2×, 4×, ... capped, for a bounded or unbounded number of attempts. */
export class Backoff {
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxAttempts: number;
  private attempts = 0;

  constructor(options: ReconnectOptions = {}) {
    this.initialDelayMs = Math.max(0, options.initialDelayMs ?? 100);
    this.maxDelayMs = Math.max(this.initialDelayMs, options.maxDelayMs ?? 10_000);
    this.maxAttempts = options.maxAttempts ?? Infinity;
  }

  /** Attempts handed out since the last reset. */
  get attempt(): number {
    return this.attempts;
  }

  /** The delay before the next attempt, or undefined when the attempts are used up. */
  next(): number | undefined {
    if (this.attempts >= this.maxAttempts) return undefined;
    const delay = Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    return delay;
  }

  reset(): void {
    this.attempts = 0;
  }
}
