import { createServer, Server } from 'node:net';
import { hostname } from 'node:os';
import { DEFAULT_GEARMAN_HOST, DEFAULT_GEARMAN_PORT } from '../common/defaults.js';
import { consoleLogger, silentLogger, type GearmanLogger } from '../common/logger.js';
import type { FrameTransport } from '../connection/frame-transport.js';
import { registerInProcessServer } from '../connection/in-process-servers.js';
import { DEFAULT_MAX_PACKET_SIZE } from '../protocol/decoder.js';
import { runAdminCommand } from './admin-commands.js';
import { MAX_HANDLE_PREFIX_BYTES } from './gearmand-limits.js';
import { JobBroker } from './job-broker.js';
import { combineLifecycles, type JobLifecycle } from './job-lifecycle.js';
import { ServerConnection, type ServerConnectionContext } from './server-connection.js';
import { DurableQueue } from './durable-queue.js';
import { openQueueStore } from './open-queue-store.js';
import type { QueueStoreOptions } from './queue-store.js';

/** Reported by the admin `version` command. */
export const JOB_SERVER_VERSION = '0.1.0';

export interface GearmanJobServerOptions {
  /** Interface to listen on; default 127.0.0.1 (never every interface unless asked). */
  host?: string;
  /** Default 4730; 0 = any free port. */
  port?: number;
  /** A job whose worker vanishes this many times fails (WORK_FAIL to its clients); 0 = no limit (gearmand's default). */
  jobRetries?: number;
  /** Turns the `exceptions` option on for every connection. */
  exceptions?: boolean;
  /** Largest packet payload accepted, in bytes; default 64 MiB. A larger header closes the connection. */
  maxPacketSize?: number;
  /** Job handles are `<prefix>:<counter>`; default `H:<hostname>` as gearmand. */
  jobHandlePrefix?: string;
  /** TCP keepalive on every connection: true (30 s idle) or the idle time in ms. */
  keepalive?: boolean | number;
  /** Where the server reports; default warnings and errors to the console; false = silent. */
  logger?: GearmanLogger | false;
  /**
   * The level the admin `verbose` command reports, one of gearmand's names (FATAL, ALERT,
   * CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG); default WARNING, FATAL with `logger: false`.
   * The CLI passes its --verbose.
   */
  verbose?: string;
  /**
   * Clients and workers of this same process that connect to this server's address get an
   * in-memory channel instead of a loopback TCP connection: the same packets, framing and
   * backpressure, listed by the `workers` admin command with the address `in-process`. Peers in
   * other processes use TCP as ever. Default true; false makes every peer use TCP.
   */
  inProcess?: boolean;
  /**
   * Where background jobs are kept: `{ type: 'memory' }` (default; lost with the process) or
   * `{ type: 'sqlite', file }`: each background job stored before its JOB_CREATED and deleted when it
   * ends, the queue replayed at start, in gearmand's `-q libsqlite3` file format (needs the
   * optional package better-sqlite3). See docs/durable-jobs.md.
   */
  queue?: QueueStoreOptions;
  /**
   * Follows every job through the server: accepted, started, progressed, requeued, ended (see
   * `JobLifecycle`). Metrics plug in here (`GearmanMetrics.jobServerLifecycle()`); several at once
   * with `combineLifecycles`.
   */
  lifecycle?: JobLifecycle;
}

/** The server's traffic so far: what `GearmanJobServer.stats()` tells. */
export interface JobServerStats {
  /** Connections open now (clients, workers, admin tools). */
  readonly connections: number;
  /** Bytes received and sent since the server started, closed connections included. */
  readonly bytesReceived: number;
  readonly bytesSent: number;
}

/** gearmand's verbose levels, most severe first. */
export const VERBOSE_LEVELS: readonly string[] = ['FATAL', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'];

const DEFAULT_KEEPALIVE_MS = 30_000;

/**
 * A Gearman job server that clients and workers cannot tell from gearmand: the binary protocol
 * and the text admin protocol on one port, an in-memory queue, gearmand 2.0's scheduling rules.
 */
export class GearmanJobServer {
  private readonly host: string;
  private readonly port: number;
  private readonly logger: GearmanLogger;
  private readonly context: ServerConnectionContext;
  private readonly broker: JobBroker;
  private readonly connections = new Set<ServerConnection>();
  private server: Server | undefined;
  private readonly inProcess: boolean;
  private unregisterInProcess: (() => void) | undefined;
  private bound: { host: string; port: number } | undefined;
  private closing: Promise<void> | undefined;
  private nextConnectionId = 1;
  private readonly queueOptions: QueueStoreOptions | undefined;
  /** Stores background jobs; none with the memory queue, which keeps the broker free of lifecycle calls. */
  private readonly durable: DurableQueue | undefined;
  private opening = false;
  /** Traffic of the connections closed so far. */
  private closedBytesReceived = 0;
  private closedBytesSent = 0;

  constructor(options: GearmanJobServerOptions = {}) {
    this.host = options.host ?? DEFAULT_GEARMAN_HOST;
    this.inProcess = options.inProcess ?? true;
    this.port = options.port ?? DEFAULT_GEARMAN_PORT;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535)
      throw new RangeError(`port must be 0-65535, got ${options.port}`);
    const jobRetries = options.jobRetries ?? 0;
    if (!Number.isInteger(jobRetries) || jobRetries < 0)
      throw new RangeError(`jobRetries must be a whole number ≥ 0, got ${options.jobRetries}`);
    const maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < 1 || maxPacketSize > 0xffffffff) {
      throw new RangeError(`maxPacketSize must be 1-4294967295 bytes, got ${options.maxPacketSize}`);
    }
    const handlePrefix = options.jobHandlePrefix ?? `H:${hostname()}`;
    // Room for ':' and a counter of up to 16 digits within gearmand's 64-byte handle limit.
    if (Buffer.byteLength(handlePrefix) > MAX_HANDLE_PREFIX_BYTES || handlePrefix.includes('\0')) {
      throw new RangeError(`jobHandlePrefix must be at most ${MAX_HANDLE_PREFIX_BYTES} bytes without NUL`);
    }
    this.logger = options.logger === false ? silentLogger : (options.logger ?? consoleLogger('GearmanJobServer'));
    const verbose = options.verbose ?? (options.logger === false ? 'FATAL' : 'WARNING');
    if (!VERBOSE_LEVELS.includes(verbose))
      throw new RangeError(`verbose must be one of ${VERBOSE_LEVELS.join(', ')}, got ${JSON.stringify(options.verbose)}`);
    const keepAliveMs =
      options.keepalive === true
        ? DEFAULT_KEEPALIVE_MS
        : typeof options.keepalive === 'number' && options.keepalive > 0
          ? options.keepalive
          : undefined;

    const queueType = options.queue?.type ?? 'memory';
    if (queueType !== 'memory' && queueType !== 'sqlite') {
      throw new TypeError(`queue.type must be 'memory' or 'sqlite', got ${JSON.stringify(queueType)}`);
    }
    if (options.queue?.type === 'sqlite') {
      this.queueOptions = options.queue;
      this.durable = new DurableQueue(options.queue.storeOnShutdown === true);
    }
    this.broker = new JobBroker({
      handlePrefix: Buffer.from(handlePrefix, 'utf8').toString('latin1'),
      jobRetries,
      warn: (message) => this.logger.warn(message),
      // The durable queue first: a job is stored before anything else hears of it.
      lifecycle:
        this.durable && options.lifecycle ? combineLifecycles(this.durable, options.lifecycle) : (this.durable ?? options.lifecycle),
    });
    const adminContext = { broker: this.broker, version: JOB_SERVER_VERSION, verbose };
    this.context = {
      broker: this.broker,
      exceptions: options.exceptions ?? false,
      maxPacketSize,
      keepAliveMs,
      runAdmin: (line) => runAdminCommand(adminContext, line),
      connectionClosed: (con, error) => this.onConnectionClosed(con, error),
      logWarning: (message) => this.logger.warn(message),
      logError: (message) => this.logger.error(message),
    };
  }

  /**
   * Opens the queue store and puts its jobs back (a persistent queue), then starts accepting
   * connections; resolves once the port is bound. Rejects with GearmanQueueStoreError when the
   * queue file cannot be used (the server then does not start), GearmanMissingPeerError when the
   * store's package is not installed.
   */
  async listen(): Promise<void> {
    if (this.server || this.opening) throw new Error('GearmanJobServer is already listening');
    if (this.closing) throw new Error('GearmanJobServer is closed');
    if (this.durable) {
      this.opening = true;
      try {
        const store = await openQueueStore(this.queueOptions, (error) => this.logger.error(error.message));
        if (this.closing) {
          store.close();
          throw new Error('GearmanJobServer is closed');
        }
        let restored = 0;
        try {
          this.durable.attach(store, (job) => {
            this.broker.restore(job);
            restored++;
          });
        } catch (error) {
          store.close();
          throw error;
        }
        this.logger.log(`job queue ${store.description}: ${restored} background job(s) restored`);
      } finally {
        this.opening = false;
      }
    }
    try {
      await this.bind();
    } catch (error) {
      this.durable?.close();
      throw error;
    }
  }

  private bind(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (error) => {
        this.server = undefined;
        reject(error);
      });
      server.listen(this.port, this.host, () => {
        const address = server.address();
        if (address && typeof address === 'object') this.bound = { host: address.address, port: address.port };
        if (this.inProcess && this.bound) {
          this.unregisterInProcess = registerInProcessServer(this.bound.host, this.bound.port, (socket) => this.accept(socket));
        }
        server.on('error', (error) => this.logger.error(`listening socket: ${error.message}`));
        this.logger.log(`listening on ${this.bound?.host}:${this.bound?.port}`);
        resolve();
      });
    });
  }

  /** Where the server listens. Throws before listen() has resolved. */
  address(): { host: string; port: number } {
    if (!this.bound) throw new Error('GearmanJobServer is not listening');
    return { ...this.bound };
  }

  /** Connections open now and bytes received and sent so far: a read-only view for metrics. */
  stats(): JobServerStats {
    let bytesReceived = this.closedBytesReceived;
    let bytesSent = this.closedBytesSent;
    for (const con of this.connections) {
      bytesReceived += con.bytesReceived;
      bytesSent += con.bytesSent;
    }
    return { connections: this.connections.size, bytesReceived, bytesSent };
  }

  /**
   * Stops accepting, closes every connection and releases the port. Queued jobs are dropped from
   * memory; a persistent queue keeps its background jobs for the next start. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const server = this.server;
    this.unregisterInProcess?.();
    this.unregisterInProcess = undefined;
    this.broker.close();
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const con of this.connections) con.destroy();
    this.connections.clear();
    await closed;
    this.bound = undefined;
    // After the broker stopped: commits what is pending, writes the queue for --store-queue-on-shutdown.
    this.durable?.close();
  }

  /** A new connection: a TCP socket, or the job server's end of an in-memory channel. */
  private accept(socket: FrameTransport): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const con = new ServerConnection(this.nextConnectionId++, socket, this.context);
    this.connections.add(con);
  }

  private onConnectionClosed(con: ServerConnection, error?: Error): void {
    if (this.connections.delete(con)) {
      this.closedBytesReceived += con.bytesReceived;
      this.closedBytesSent += con.bytesSent;
    } else if (this.closing) return;
    if (error && this.logger.debug) this.logger.debug(`connection ${con.id} (${con.host}) closed: ${error.message}`);
    con.leaveBroker();
  }
}
