import type { Socket } from 'node:net';
import { DecoderOptions, Frame, PacketDecoder } from '../protocol/decoder.js';
import { GearmanProtocolError } from '../protocol/protocol-error.js';

export interface FramedSocketHandler {
  /** A complete packet or admin line arrived. */
  onFrame(frame: Frame): void;
  /** The peer broke the protocol; the socket is not usable for reading any more. */
  onProtocolError(error: GearmanProtocolError): void;
  /** The socket closed, for whatever reason; called once. */
  onClose(error?: Error): void;
}

export interface FramedSocketOptions extends DecoderOptions {
  /** TCP keepalive initial delay in ms; 0 or undefined leaves keepalive off. */
  keepAliveMs?: number;
}

/**
 * A socket that speaks in Gearman frames: decodes what arrives, and batches what is written
 * within one tick into a single write (cork now, uncork on the next tick).
 */
export class FramedSocket {
  private readonly decoder: PacketDecoder;
  private corked = false;
  private closed = false;

  constructor(
    readonly socket: Socket,
    options: FramedSocketOptions,
    private readonly handler: FramedSocketHandler,
  ) {
    this.decoder = new PacketDecoder(options);
    socket.setNoDelay(true);
    if (options.keepAliveMs) socket.setKeepAlive(true, options.keepAliveMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.finish(error));
    socket.on('close', () => this.finish());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues bytes for this tick's batch. Returns false when the socket's buffer is over its high-water mark. */
  write(bytes: Buffer): boolean {
    if (this.closed) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => this.flush());
    }
    return this.socket.write(bytes);
  }

  /** Sends what is queued, then closes the write side. */
  end(): void {
    this.flush();
    this.socket.end();
  }

  destroy(error?: Error): void {
    this.socket.destroy(error);
  }

  private flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
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
