/**
 * What a test connection has received so far, handed out in arrival order. Waiting for more is
 * bounded: it fails once the time is up, or at once when the queue was told nothing more will come.
 */
export class ArrivalQueue<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  /** Nothing more will arrive: waits that the queued items cannot meet fail with `error`. */
  fail(error: Error): void {
    this.failure = error;
    this.wake?.();
  }

  /** Takes the next `count` items, waiting at most `timeoutMs` for them to arrive. */
  async take(count: number, timeoutMs: number, describeTimeout: (queued: readonly T[]) => string): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length < count) {
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(describeTimeout(this.items));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.items.splice(0, count);
  }
}
