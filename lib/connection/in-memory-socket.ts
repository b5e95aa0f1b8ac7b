import { EventEmitter } from 'node:events';
import { getDefaultHighWaterMark } from 'node:stream';
import type { FrameTransport } from './frame-transport.js';

/** What the job server lists as the peer address of a connection over the in-memory channel. */
export const IN_PROCESS_PEER_ADDRESS = 'in-process';

/**
 * One end of an in-memory channel between a client or worker and a job server in the same process:
 * a `FrameTransport` whose bytes go to the other end instead of a socket.
 *
 * It behaves as a TCP socket whose peer reads in its own turn of the event loop: what one end
 * writes reaches the other in a later `setImmediate` (never during the write, so neither side runs
 * inside the other's call stack, and timers and I/O get their turn between hops). Backpressure is
 * a socket's: `writableLength` counts the bytes the peer has not read yet, `write` returns false
 * once they reach the socket high-water mark, and 'drain' follows when the peer has read them all.
 * A paused end reads nothing, so its peer backs up as a TCP peer would. `end()` closes both ends
 * once each has read what the other wrote (a socket without half-open); `destroy()` closes this
 * end at once and the peer after it has read what was already written to it.
 */
export class InMemorySocket extends EventEmitter implements FrameTransport {
  readonly writableHighWaterMark = getDefaultHighWaterMark(false);
  private written = 0;
  private needDrain = false;
  private isDestroyed = false;
  private peer!: InMemorySocket;
  /** Chunks the peer wrote that this end has not emitted yet. */
  private inbound: Buffer[] = [];
  private deliveryScheduled = false;
  private paused = false;
  /** end() was called: nothing more is written. */
  private writeEnded = false;
  /** The peer was told that this end will write nothing more (after it read everything). */
  private endSent = false;
  /** The peer will write nothing more. */
  private readEnded = false;
  private readonly deliver = () => this.deliverInbound();

  private constructor(readonly remoteAddress: string | undefined) {
    super();
  }

  /** A connected pair: the client's end (emits 'connect' on the next tick) and the job server's end. */
  static pair(): { client: InMemorySocket; server: InMemorySocket } {
    const client = new InMemorySocket(undefined);
    const server = new InMemorySocket(IN_PROCESS_PEER_ADDRESS);
    client.peer = server;
    server.peer = client;
    process.nextTick(() => {
      if (!client.isDestroyed) client.emit('connect');
    });
    return { client, server };
  }

  get writableLength(): number {
    return this.written;
  }

  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  get destroyed(): boolean {
    return this.isDestroyed;
  }

  write(chunk: Buffer): boolean {
    if (this.isDestroyed || this.writeEnded) return false;
    if (chunk.length === 0) return !this.needDrain;
    this.written += chunk.length;
    this.peer.receive(chunk);
    if (this.written < this.writableHighWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  // One write reaches the peer as one chunk whatever the corking: nothing to batch.
  cork(): void {}
  uncork(): void {}

  end(): void {
    if (this.isDestroyed || this.writeEnded) return;
    this.writeEnded = true;
    this.sendEndWhenRead();
  }

  destroy(error?: Error): void {
    if (this.isDestroyed) return;
    this.isDestroyed = true;
    this.inbound = [];
    this.written = 0;
    process.nextTick(() => {
      if (error) this.emit('error', error);
      this.emit('close');
    });
    this.peer.peerEnded();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.inbound.length > 0) this.scheduleDelivery();
    else this.closeWhenDone();
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  private receive(chunk: Buffer): void {
    if (this.isDestroyed) return;
    this.inbound.push(chunk);
    this.scheduleDelivery();
  }

  private scheduleDelivery(): void {
    if (this.deliveryScheduled || this.paused || this.isDestroyed) return;
    this.deliveryScheduled = true;
    setImmediate(this.deliver);
  }

  private deliverInbound(): void {
    this.deliveryScheduled = false;
    const chunks = this.inbound;
    this.inbound = [];
    let read = 0;
    for (let i = 0; i < chunks.length; i++) {
      if (this.paused || this.isDestroyed) {
        if (!this.isDestroyed) this.inbound = chunks.slice(i).concat(this.inbound);
        break;
      }
      read += chunks[i].length;
      this.emit('data', chunks[i]);
    }
    if (read > 0) this.peer.wasRead(read);
    this.closeWhenDone();
  }

  /** The peer read `bytes` of what this end wrote. */
  private wasRead(bytes: number): void {
    if (this.isDestroyed) return;
    this.written -= bytes;
    if (this.written === 0 && this.needDrain) {
      this.needDrain = false;
      this.emit('drain');
    }
    this.sendEndWhenRead();
  }

  /** Once end() was called and the peer has read everything: tells the peer, then closes if the peer has ended too. */
  private sendEndWhenRead(): void {
    if (!this.writeEnded || this.endSent || this.written > 0 || this.isDestroyed) return;
    this.endSent = true;
    this.peer.peerEnded();
    this.closeWhenDone();
  }

  /** The peer writes nothing more: once this end has read what it wrote, it ends too (no half-open) and closes. */
  private peerEnded(): void {
    if (this.isDestroyed || this.readEnded) return;
    this.readEnded = true;
    if (this.inbound.length > 0 && !this.paused) this.scheduleDelivery();
    else this.closeWhenDone();
  }

  private closeWhenDone(): void {
    if (this.isDestroyed || !this.readEnded || (this.inbound.length > 0 && !this.paused)) return;
    if (!this.writeEnded) {
      this.writeEnded = true;
      this.sendEndWhenRead();
      if (this.isDestroyed) return;
    }
    // What this end wrote is read (or its peer is gone, and nobody will read it).
    if (!this.endSent && !this.peer.isDestroyed) return;
    this.isDestroyed = true;
    this.inbound = [];
    process.nextTick(() => this.emit('close'));
  }
}
