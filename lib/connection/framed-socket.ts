import { DecoderOptions, Frame, PacketDecoder } from '../protocol/decoder.js';
import { GearmanProtocolError } from '../protocol/protocol-error.js';
import type { FrameTransport } from './frame-transport.js';

export interface FramedSocketHandler {
  /** A complete packet or admin line arrived. */
  onFrame(frame: Frame): void;
  /** The peer broke the protocol; the socket is not usable for reading any more. */
  onProtocolError(error: GearmanProtocolError): void;
  /** The socket closed, for whatever reason; called once. */
  onClose(error?: Error): void;
  /** After a write returned false: what was written has left the socket's buffer. */
  onDrain?(): void;
}

export interface FramedSocketOptions extends DecoderOptions {
  /** TCP keepalive initial delay in ms; 0 or undefined leaves keepalive off. */
  keepAliveMs?: number;
}

/** Up to this many bytes written in one tick are copied into one buffer; beyond, they go out as a vector. */
const COALESCE_LIMIT = 64 * 1024;

/**
 * A socket (or any FrameTransport) that speaks in Gearman frames: decodes what arrives, and batches what is written
 * within one tick into a single socket write on the next tick. Packets are small and many, and
 * each stream write costs far more than copying a few bytes, so a batch is one buffer.
 *
 * Backpressure counts the batch not yet handed to the socket as well as the socket's own buffer:
 * `write` returns false once both together reach the socket's high-water mark, and `onDrain`
 * follows once they are below it again (at the flush when the socket took everything at once,
 * at the socket's 'drain' otherwise).
 */
export class FramedSocket {
  private readonly decoder: PacketDecoder;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private drainOwed = false;
  private ended = false;
  private closed = false;
  private readonly flushNow = () => this.flush();
  private received = 0;
  private sent = 0;

  constructor(
    readonly socket: FrameTransport,
    options: FramedSocketOptions,
    private readonly handler: FramedSocketHandler,
  ) {
    this.decoder = new PacketDecoder(options);
    socket.setNoDelay(true);
    if (options.keepAliveMs) socket.setKeepAlive(true, options.keepAliveMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.checkDrained());
    socket.on('error', (error) => this.finish(error));
    socket.on('close', () => this.finish());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes that arrived so far (a job server's traffic metrics read them). */
  get bytesReceived(): number {
    return this.received;
  }

  /** Bytes handed to the socket so far. */
  get bytesSent(): number {
    return this.sent;
  }

  /** Whether what is written, batched or in the socket's buffer, has reached the socket's high-water mark. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain || this.socket.writableLength + this.pendingBytes >= this.socket.writableHighWaterMark;
  }

  /** Queues bytes for this tick's batch. Returns false when the high-water mark is reached (onDrain follows). */
  write(bytes: Buffer): boolean {
    if (this.closed || this.ended) return false;
    if (this.pending.length === 0) process.nextTick(this.flushNow);
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (!this.needsDrain) return true;
    this.drainOwed = true;
    return false;
  }

  /** Sends what is queued, then closes the write side; later writes are dropped. */
  end(): void {
    this.ended = true;
    this.flush();
    this.socket.end();
  }

  destroy(error?: Error): void {
    this.socket.destroy(error);
  }

  private flush(): void {
    const chunks = this.pending;
    if (chunks.length === 0) return;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed) return;
    this.sent += bytes;
    if (chunks.length === 1) {
      this.socket.write(chunks[0]);
    } else if (bytes <= COALESCE_LIMIT) {
      this.socket.write(Buffer.concat(chunks, bytes));
    } else {
      this.socket.cork();
      for (const chunk of chunks) this.socket.write(chunk);
      this.socket.uncork();
    }
    if (!this.ended) this.checkDrained();
  }

  private checkDrained(): void {
    if (!this.drainOwed || this.needsDrain || this.closed) return;
    this.drainOwed = false;
    this.handler.onDrain?.();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.received += chunk.length;
    try {
      this.decoder.feed(chunk, (frame) => this.handler.onFrame(frame));
    } catch (error) {
      if (!(error instanceof GearmanProtocolError)) throw error;
      this.socket.pause();
      this.handler.onProtocolError(error);
    }
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.handler.onClose(error);
  }
}
