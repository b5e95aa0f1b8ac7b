import { DecoderOptions, Frame, PacketDecoder } from '../protocol/decoder.js';
import { GearmanProtocolError } from '../protocol/protocol-error.js';
import type { FrameTransport } from './frame-transport.js';
import { ReadSlicer, type ReadTurns } from './read-turns.js';

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
  /**
   * Frames handed to onFrame per turn of the event loop; the rest of what arrived waits for a
   * later turn (after other sockets had theirs) with reading paused. 0 or undefined: no bound.
   */
  maxFramesPerTurn?: number;
  /** Shares turns with the other sockets of the same server (see ReadTurns); replaces maxFramesPerTurn. */
  readTurns?: ReadTurns;
}

// Why reading is paused (bits): frames decoded ahead wait for a later turn; the owner asked.
const HELD_BY_BACKLOG = 1;
const HELD_BY_OWNER = 2;
const HELD_BY_FAILURE = 4;

/** Up to this many bytes written in one tick are copied into one buffer; beyond, they go out as a vector. */
const COALESCE_LIMIT = 64 * 1024;
/** Replies held back while the peer's own backlog is being worked through, at most. */
const HELD_REPLIES_LIMIT = 16 * 1024;
/**
 * A read of at most this many bytes is handled whole, whatever its frame count: a client's burst
 * (a few submits written together, a pipelining client's window) is queued in one turn, so that
 * priorities apply among its jobs and it costs one turn. A flood is read in the socket's larger
 * chunks, which are sliced.
 */
const WHOLE_READ_BYTES = 4 * 1024;

/**
 * A socket (or any FrameTransport) that speaks in Gearman frames: decodes what arrives, and batches what is written
 * within one tick into a single socket write on the next tick. Packets are small and many, and
 * each stream write costs far more than copying a few bytes, so a batch is one buffer.
 *
 * Backpressure counts the batch not yet handed to the socket as well as the socket's own buffer:
 * `write` returns false once both together reach the socket's high-water mark, and `onDrain`
 * follows once they are below it again (at the flush when the socket took everything at once,
 * at the socket's 'drain' otherwise).
 *
 * Reading is fair and can be held: with `maxFramesPerTurn`, a chunk holding more frames than that
 * is decoded in slices, one per turn of the event loop, with the socket paused meanwhile (so a
 * flood from one peer cannot hold up the others), and the replies to it are held until its backlog
 * is done; `pauseReading` stops reading for the owner (a job server that a peer owes too many
 * replies to).
 */
export class FramedSocket {
  private readonly decoder: PacketDecoder;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private drainOwed = false;
  private ended = false;
  private closed = false;
  private readonly flushNow = () => this.flush(false);
  private received = 0;
  private sent = 0;
  private readonly maxFramesPerTurn: number;
  /** Bytes that arrived but wait for a later turn (more frames than maxFramesPerTurn). */
  private backlog: Buffer | undefined;
  private backlogScheduled = false;
  private readonly continueBacklog = () => this.readBacklog();
  /** HELD_BY_* bits; the socket is paused while any is set. */
  private holds = 0;
  private readonly onFrameBound: (frame: Frame) => void;
  private readonly slicer: ReadSlicer | undefined;
  /** Frames handed over so far. */
  private frames = 0;

  constructor(
    readonly socket: FrameTransport,
    options: FramedSocketOptions,
    private readonly handler: FramedSocketHandler,
  ) {
    this.decoder = new PacketDecoder(options);
    this.maxFramesPerTurn = options.maxFramesPerTurn || Infinity;
    this.slicer = options.readTurns && new ReadSlicer(options.readTurns);
    this.onFrameBound = (frame) => {
      this.frames++;
      this.handler.onFrame(frame);
    };
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

  /** Bytes written and not yet taken by the peer: this tick's batch and the socket's buffer. */
  get queuedBytes(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  /** Whether part of a frame has arrived and the rest has not. */
  get hasPartialFrame(): boolean {
    return !this.decoder.isAtFrameBoundary;
  }

  /** Whether reading is paused by pauseReading. */
  get isReadingPaused(): boolean {
    return (this.holds & HELD_BY_OWNER) !== 0;
  }

  /** Stops reading from the socket until resumeReading (what arrived already waits too). */
  pauseReading(): void {
    this.hold(HELD_BY_OWNER);
  }

  resumeReading(): void {
    this.release(HELD_BY_OWNER);
  }

  /** Asks for onDrain once what is queued is below the high-water mark, even if no write returned false. */
  requestDrain(): void {
    this.drainOwed = true;
    if (this.pending.length === 0) this.checkDrained();
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
    this.flush(true);
    this.socket.end();
  }

  destroy(error?: Error): void {
    this.socket.destroy(error);
  }

  /**
   * Hands the batch to the socket. While the peer's backlog waits for later turns, its replies are
   * held (up to HELD_REPLIES_LIMIT) and go out when the backlog is done: a write per slice would
   * cost a bulk sender's slice more than its frames, and take the time from everyone else.
   */
  private flush(force: boolean): void {
    const chunks = this.pending;
    if (chunks.length === 0) return;
    if (!force && this.backlogScheduled && this.pendingBytes < HELD_REPLIES_LIMIT) return;
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
    if ((this.holds & HELD_BY_FAILURE) !== 0) return;
    // A paused socket may still hand over what it had read: it waits behind the backlog.
    if (this.holds !== 0) {
      this.backlog = this.backlog ? Buffer.concat([this.backlog, chunk]) : chunk;
      this.hold(HELD_BY_BACKLOG);
      return;
    }
    this.decode(chunk, chunk.length <= WHOLE_READ_BYTES);
  }

  /** Decodes up to maxFramesPerTurn frames (all of a small read); what is left waits for a later turn, reading paused. */
  private decode(chunk: Buffer, whole = false): void {
    let consumed: number;
    const slicer = this.slicer;
    const budget = whole ? Infinity : slicer ? slicer.nextSlice() : this.maxFramesPerTurn;
    const framesBefore = this.frames;
    try {
      consumed = this.decoder.feed(chunk, this.onFrameBound, budget);
    } catch (error) {
      if (!(error instanceof GearmanProtocolError)) throw error;
      this.backlog = undefined;
      this.hold(HELD_BY_FAILURE);
      this.handler.onProtocolError(error);
      return;
    }
    if (consumed === chunk.length) {
      if (slicer && this.frames - framesBefore <= slicer.framesPerTurn) slicer.lightRead();
      this.release(HELD_BY_BACKLOG);
      return;
    }
    this.backlog = chunk.subarray(consumed);
    this.hold(HELD_BY_BACKLOG);
    this.scheduleBacklog();
  }

  private scheduleBacklog(): void {
    if (this.backlogScheduled) return;
    this.backlogScheduled = true;
    setImmediate(this.continueBacklog);
  }

  private readBacklog(): void {
    this.backlogScheduled = false;
    // Only the backlog's own hold may be set: the owner's pause or a failure stop it here.
    if (!this.closed && this.holds === HELD_BY_BACKLOG) {
      const backlog = this.backlog;
      this.backlog = undefined;
      if (backlog) this.decode(backlog);
      else this.release(HELD_BY_BACKLOG);
    }
    // Replies held for the backlog go out now, unless another slice is due and they are few.
    this.flush(false);
  }

  private hold(reason: number): void {
    if (this.holds === 0) this.socket.pause();
    this.holds |= reason;
  }

  private release(reason: number): void {
    if ((this.holds & reason) === 0) return;
    this.holds &= ~reason;
    if (this.holds === 0) {
      if (!this.closed) this.socket.resume();
    } else if (this.holds === HELD_BY_BACKLOG) {
      this.scheduleBacklog();
    }
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.handler.onClose(error);
  }
}
