/**
 * The byte stream FramedSocket speaks Gearman over: the part of `net.Socket` it uses. A TCP or TLS
 * socket is one; so is an end of the in-memory channel to a job server in the same process.
 * Backpressure follows Node's writable streams: `write` returns false once `writableLength`
 * reaches `writableHighWaterMark`, `writableNeedDrain` stays true until 'drain'.
 */
export interface FrameTransport {
  /** The peer's address as the job server lists it (`workers` admin command). */
  readonly remoteAddress?: string;
  readonly writableLength: number;
  readonly writableHighWaterMark: number;
  readonly writableNeedDrain: boolean;
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  /** Sends what was written, then closes. */
  end(): void;
  destroy(error?: Error): void;
  /** Stops 'data' events until resume() (for good after a protocol error). */
  pause(): void;
  /** Starts 'data' events again after pause() (a job server pauses a peer that owes it too many replies). */
  resume(): void;
  setNoDelay(noDelay: boolean): unknown;
  setKeepAlive(enable: boolean, initialDelayMs: number): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  once(event: 'connect' | 'secureConnect', listener: () => void): unknown;
}
