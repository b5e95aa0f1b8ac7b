import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { GearmanConnectionError, socketErrorCode } from '../common/errors.js';
import type { Frame, Packet } from '../protocol/decoder.js';
import type { GearmanProtocolError } from '../protocol/protocol-error.js';
import { Backoff, type ReconnectOptions } from './backoff.js';
import type { FrameTransport } from './frame-transport.js';
import { FramedSocket } from './framed-socket.js';
import { connectInProcess } from './in-process-servers.js';
import type { ResolvedServerAddress } from './server-address.js';

export interface GearmanConnectionOptions {
  /** A connect that takes longer fails; default 5000 ms. */
  connectTimeoutMs?: number;
  reconnect?: ReconnectOptions;
  /** TCP keepalive initial delay; default 60 000 ms, 0 turns it off. */
  keepAliveMs?: number;
  /** Largest payload accepted from the server; default 64 MiB. */
  maxPacketSize?: number;
}

/** What a client or worker session learns from its connection. */
export interface GearmanConnectionHandler {
  /** The socket is up. Packets written here go out before anything else written in this tick. */
  onConnect(): void;
  onPacket(packet: Packet): void;
  /** The connection went down (lost, or closed by us); whatever was in flight on it is gone. */
  onDisconnect(error: GearmanConnectionError): void;
  /** A reconnect attempt is scheduled after delayMs. */
  onReconnecting(delayMs: number, attempt: number): void;
  /** Reconnect attempts are used up; the connection stays down until opened again. */
  onGiveUp(error: GearmanConnectionError): void;
  /** After a write returned false (the socket's buffer reached its high-water mark): there is room again. */
  onDrain?(): void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_KEEPALIVE_MS = 60_000;

/**
 * The code of a connection the job server closed without a socket error (a FIN, not a reset):
 * what Node's own HTTP client reports for a server that hangs up before answering.
 */
const CLOSED_BY_PEER = 'ECONNRESET';

type State = 'idle' | 'connecting' | 'connected' | 'waiting-to-reconnect';

function checkOption(name: string, value: number | undefined, minimum: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value) || value < minimum || (!Number.isInteger(value) && value !== Infinity)) {
    throw new TypeError(`${name} must be a whole number ≥ ${minimum}, got ${String(value)}`);
  }
}

/** Refuses option values that would silently misbehave (a negative timeout fires at once, NaN never). */
export function checkConnectionOptions(options: GearmanConnectionOptions): void {
  checkOption('connectTimeoutMs', options.connectTimeoutMs, 1);
  checkOption('keepAliveMs', options.keepAliveMs, 0);
  checkOption('maxPacketSize', options.maxPacketSize, 1);
  checkOption('reconnect.initialDelayMs', options.reconnect?.initialDelayMs, 0);
  checkOption('reconnect.maxDelayMs', options.reconnect?.maxDelayMs, 0);
  checkOption('reconnect.maxAttempts', options.reconnect?.maxAttempts, 0);
}

interface Attempt {
  promise: Promise<void>;
  resolve(): void;
  reject(error: GearmanConnectionError): void;
}

/**
 * One connection to one job server: connects (TCP or TLS) with a timeout, and once opened keeps
 * itself up, reconnecting with exponential back-off after a failure or a drop until halted.
 * It knows nothing of jobs: packets go to the handler, bytes come from `write`.
 */
export class GearmanConnection {
  private state: State = 'idle';
  /** Whether the owner wants the connection up: drops and failures then lead to reconnects. */
  private wanted = false;
  private framed: FramedSocket | undefined;
  private attempt: Attempt | undefined;
  /** whenConnected() callers, settled at the next connect or when the connection stops trying. */
  private upWaiters: Omit<Attempt, 'promise'>[] = [];
  private lastFailure: GearmanConnectionError | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Why we are closing the socket ourselves, reported instead of the socket's own error. */
  private closingReason: GearmanConnectionError | undefined;
  private closed: (() => void) | undefined;
  private readonly backoff: Backoff;
  private readonly connectTimeoutMs: number;

  constructor(
    readonly address: ResolvedServerAddress,
    private readonly options: GearmanConnectionOptions,
    private readonly handler: GearmanConnectionHandler,
  ) {
    checkConnectionOptions(options);
    this.backoff = new Backoff(options.reconnect);
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /** `host:port`. */
  get label(): string {
    return this.address.label;
  }

  get isConnected(): boolean {
    return this.state === 'connected';
  }

  /** Whether more written now would only queue in memory: the socket buffer is over its high-water mark. */
  get isBackedUp(): boolean {
    return this.framed !== undefined && this.framed.needsDrain;
  }

  /** Bytes written and not yet taken by the job server (batched, or in the socket's buffer); 0 while down. */
  get queuedBytes(): number {
    return this.framed?.queuedBytes ?? 0;
  }

  /** The connect attempt in progress (settles when it succeeds or fails), if one is. */
  get pendingAttempt(): Promise<void> | undefined {
    return this.state === 'connecting' ? this.attempt?.promise : undefined;
  }

  /** Whether the owner wants it up: it is connected, connecting, or waiting to reconnect. */
  get isWanted(): boolean {
    return this.wanted;
  }

  /**
   * Brings the connection up (at once, even while waiting to reconnect) and keeps it up.
   * Rejects with GearmanConnectionError when this attempt fails; reconnects continue after that.
   */
  open(): Promise<void> {
    this.wanted = true;
    switch (this.state) {
      case 'connected':
        return Promise.resolve();
      case 'connecting':
        return this.attempt!.promise;
      case 'waiting-to-reconnect':
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        return this.connectNow();
      case 'idle':
        this.backoff.reset();
        return this.connectNow();
    }
  }

  /**
   * Resolves once the connection is up, now or after its reconnect attempts; rejects with the last
   * failure when it stops trying (halted, or its attempts used up). Does not open it.
   */
  whenConnected(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (!this.wanted) return Promise.reject(this.lastFailure ?? new GearmanConnectionError(`Not connected to ${this.label}`, this.label));
    return new Promise<void>((resolve, reject) => this.upWaiters.push({ resolve, reject }));
  }

  /** Why the last attempt failed or the connection last dropped, if it ever did. */
  get lastError(): GearmanConnectionError | undefined {
    return this.lastFailure;
  }

  /** Writes encoded packets (batched per tick). Returns false when the socket buffer is full or the connection is down. */
  write(bytes: Buffer): boolean {
    if (this.state !== 'connected') return false;
    return this.framed!.write(bytes);
  }

  /** Drops the connection now and stops reconnecting; open() may bring it up again. */
  halt(reason?: GearmanConnectionError): void {
    this.wanted = false;
    this.settleUpWaiters(reason ?? this.lastFailure ?? new GearmanConnectionError(`Connection to ${this.label} closed`, this.label));
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.state === 'waiting-to-reconnect') this.state = 'idle';
    if (this.framed) {
      this.closingReason = reason ?? new GearmanConnectionError(`Connection to ${this.label} closed`, this.label);
      this.framed.destroy();
    }
  }

  /** Drops the connection now, for the given reason; reconnects follow as after any loss. */
  drop(reason: GearmanConnectionError): void {
    if (!this.framed) return;
    this.closingReason = reason;
    this.framed.destroy();
  }

  /** Sends what is queued, closes the socket and stops reconnecting. Bounded by the connect timeout. */
  end(reason?: GearmanConnectionError): Promise<void> {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.state !== 'connected') {
      this.halt(reason);
      return Promise.resolve();
    }
    this.closingReason = reason ?? new GearmanConnectionError(`Connection to ${this.label} closed`, this.label);
    const framed = this.framed!;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => framed.destroy(), this.connectTimeoutMs);
      this.closed = () => {
        clearTimeout(timer);
        resolve();
      };
      framed.end();
    });
  }

  private connectNow(): Promise<void> {
    this.state = 'connecting';
    let resolve!: () => void;
    let reject!: (error: GearmanConnectionError) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.attempt = { promise, resolve, reject };

    const { host, port, tls } = this.address;
    // A job server of this process at that address is reached in memory; TLS always goes over TCP.
    const socket: FrameTransport = tls
      ? tlsConnect({ ...tls, host, port, servername: tls.servername ?? (isIP(host) ? undefined : host) })
      : (connectInProcess(host, port) ?? netConnect({ host, port }));
    const framed = new FramedSocket(
      socket,
      { accept: 'response', maxPacketSize: this.options.maxPacketSize, keepAliveMs: this.options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS },
      {
        onFrame: (frame) => this.onFrame(framed, frame),
        onProtocolError: (error) => this.onProtocolError(framed, error),
        onClose: (error) => this.onSocketClose(framed, error),
        onDrain: () => {
          if (framed === this.framed && this.state === 'connected') this.handler.onDrain?.();
        },
      },
    );
    this.framed = framed;
    this.closingReason = undefined;
    this.connectTimer = setTimeout(() => {
      this.closingReason = new GearmanConnectionError(
        `Connecting to ${this.label} timed out after ${this.connectTimeoutMs} ms`,
        this.label,
        {
          code: 'ETIMEDOUT',
        },
      );
      framed.destroy();
    }, this.connectTimeoutMs);
    socket.once(tls ? 'secureConnect' : 'connect', () => this.onSocketConnect(framed));
    return promise;
  }

  private onSocketConnect(framed: FramedSocket): void {
    if (framed !== this.framed || this.state !== 'connecting') return;
    clearTimeout(this.connectTimer);
    this.state = 'connected';
    this.backoff.reset();
    const attempt = this.attempt!;
    this.attempt = undefined;
    this.handler.onConnect();
    attempt.resolve();
    this.settleUpWaiters();
  }

  private settleUpWaiters(error?: GearmanConnectionError): void {
    const waiters = this.upWaiters;
    if (waiters.length === 0) return;
    this.upWaiters = [];
    for (const waiter of waiters) {
      if (error) waiter.reject(error);
      else waiter.resolve();
    }
  }

  private onFrame(framed: FramedSocket, frame: Frame): void {
    if (framed !== this.framed) return;
    if (frame.kind === 'admin') {
      this.closingReason = new GearmanConnectionError(`${this.label} sent a text line where a binary packet was expected`, this.label);
      framed.destroy();
      return;
    }
    this.handler.onPacket(frame);
  }

  private onProtocolError(framed: FramedSocket, error: GearmanProtocolError): void {
    this.closingReason = new GearmanConnectionError(`${this.label} broke the protocol: ${error.message}`, this.label, { cause: error });
    framed.destroy();
  }

  private onSocketClose(framed: FramedSocket, socketError: Error | undefined): void {
    if (framed !== this.framed) return;
    this.framed = undefined;
    clearTimeout(this.connectTimer);
    const previous = this.state;
    this.state = 'idle';
    const reason = this.closingReason;
    this.closingReason = undefined;

    if (previous === 'connecting') {
      const error =
        reason ??
        new GearmanConnectionError(`Cannot connect to ${this.label}: ${socketError?.message ?? 'connection closed'}`, this.label, {
          cause: socketError,
          code: socketErrorCode(socketError) ?? CLOSED_BY_PEER,
        });
      const attempt = this.attempt!;
      this.attempt = undefined;
      this.lastFailure = error;
      attempt.reject(error);
      if (this.wanted) this.scheduleReconnect(error);
    } else {
      const error =
        reason ??
        new GearmanConnectionError(`Connection to ${this.label} lost: ${socketError?.message ?? 'closed by the job server'}`, this.label, {
          cause: socketError,
          code: socketErrorCode(socketError) ?? CLOSED_BY_PEER,
        });
      this.lastFailure = error;
      this.handler.onDisconnect(error);
      if (this.wanted) this.scheduleReconnect(error);
    }
    const closed = this.closed;
    this.closed = undefined;
    closed?.();
  }

  private scheduleReconnect(lastError: GearmanConnectionError): void {
    const delay = this.backoff.next();
    if (delay === undefined) {
      this.wanted = false;
      const error = new GearmanConnectionError(
        `Gave up reconnecting to ${this.label} after ${this.backoff.attempt} attempts: ${lastError.message}`,
        this.label,
        { cause: lastError, code: lastError.code },
      );
      this.settleUpWaiters(lastError);
      this.handler.onGiveUp(error);
      return;
    }
    this.state = 'waiting-to-reconnect';
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      // A failure here schedules the next attempt itself.
      this.connectNow().catch(() => undefined);
    }, delay);
    this.handler.onReconnecting(delay, this.backoff.attempt);
  }
}
