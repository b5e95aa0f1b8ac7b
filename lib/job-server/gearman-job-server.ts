import { createServer, Server, Socket } from 'node:net';
import { hostname } from 'node:os';
import { createServer as createTlsServer, type Server as TlsServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { DEFAULT_GEARMAN_HOST, DEFAULT_GEARMAN_PORT } from '../common/defaults.js';
import { consoleLogger, silentLogger, type GearmanLogger } from '../common/logger.js';
import { ReadTurns } from '../connection/read-turns.js';
import type { FrameTransport } from '../connection/frame-transport.js';
import { registerInProcessServer } from '../connection/in-process-servers.js';
import { DEFAULT_MAX_PACKET_SIZE } from '../protocol/decoder.js';
import { encodeResponse } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import { ADMIN_COMMANDS_SETTINGS, adminAccessFor, certificateNames, isLoopbackAddress, type AdminCommandsSetting } from './admin-access.js';
import { runAdminCommand } from './admin-commands.js';
import { MAX_HANDLE_PREFIX_BYTES } from './gearmand-limits.js';
import { BatchCoordinator } from './batch-coordinator.js';
import { JobBroker } from './job-broker.js';
import { JOB_HANDLE_STYLES, MAX_UNGUESSABLE_PREFIX_BYTES, type JobHandleStyle } from './job-handles.js';
import { combineLifecycles, type JobLifecycle } from './job-lifecycle.js';
import { JobResults } from './job-results.js';
import { collectGarbageReducingMemory, committedHeapBytes, MemoryRelease } from './memory-release.js';
import { ReservedFunctions } from './reserved-functions.js';
import { resultRetention, type ResultRetention } from './stored-results.js';
import { ServerConnection, type Overstay, type ServerConnectionContext } from './server-connection.js';
import { resolveJobServerLimits, type JobServerLimits } from './server-limits.js';
import { DurableQueue } from './durable-queue.js';
import { openQueueStore } from './open-queue-store.js';
import type { QueueStore, QueueStoreOptions } from './queue-store.js';
import { SqliteQueueStore } from './sqlite-queue-store.js';
import { handleKey, SqliteResults, type PersistedHandle, type QueuedHandle, type ResultsDatabase } from './sqlite-results.js';

/** Reported by the admin `version` command. */
export const JOB_SERVER_VERSION = '0.1.0';

/** One address the server listens on. */
export interface JobServerListener {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 4730; 0 = any free port. */
  port?: number;
  /** TLS only on this listener, with the server's `tls` certificates (required then). Default false. */
  tls?: boolean;
}

/**
 * The server's TLS certificate and key (`key` and `cert`, or `pfx`), as `tls.createSecureContext`
 * takes them. With `ca`, every TLS client must present a certificate that this CA signed
 * (`requestCert` and `rejectUnauthorized` default to true then, false without `ca`).
 */
export interface JobServerTlsOptions extends SecureContextOptions {
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
}

export interface GearmanJobServerOptions {
  /** Interface to listen on; default 127.0.0.1 (never every interface unless asked). */
  host?: string;
  /** Default 4730; 0 = any free port. */
  port?: number;
  /**
   * TLS for the listener given by `host` and `port` (a TLS port never takes plaintext), or the
   * certificates for the `listeners` that ask for TLS. See JobServerTlsOptions.
   */
  tls?: JobServerTlsOptions;
  /**
   * Several addresses at once, in place of `host` and `port`: e.g. TLS on every interface and
   * plaintext on loopback, `[{ host: '0.0.0.0', port: 4730, tls: true }, { host: '127.0.0.1', port: 4731 }]`.
   */
  listeners?: JobServerListener[];
  /**
   * Who may run the admin commands that change the server or list other clients' jobs:
   * `read-only` (default: everyone may read the state, nobody may change it), `loopback` (every
   * command from this machine), `all` (gearmand's behaviour). See docs/security.md.
   */
  adminCommands?: AdminCommandsSetting;
  /**
   * TLS client certificates allowed every admin command whatever `adminCommands` says, by subject
   * common name, subject alternative DNS name or e-mail, or SHA-256 fingerprint. Needs `tls` with a `ca`.
   */
  adminCertificates?: string[];
  /** `unguessable` (default) or `sequential` (gearmand's `H:host:N`, for tools that parse handles). */
  jobHandles?: JobHandleStyle;
  /** What one peer and all of them may use; every limit has a default (see JobServerLimits), 0 turns one off. */
  limits?: Partial<JobServerLimits>;
  /** A job whose worker vanishes this many times fails (WORK_FAIL to its clients); 0 = no limit (gearmand's default). */
  jobRetries?: number;
  /** Turns the `exceptions` option on for every connection. */
  exceptions?: boolean;
  /** Largest packet payload accepted, in bytes; default 64 MiB. A larger header closes the connection. */
  maxPacketSize?: number;
  /** Job handles start with `<prefix>:`; default `H:<hostname>` as gearmand. */
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
   * Clients and workers of this same process that connect to the address of a plaintext listener
   * get an in-memory channel instead of a loopback TCP connection: the same packets, framing,
   * backpressure and limits, listed by the `workers` admin command with the address `in-process`
   * (loopback for `adminCommands`). Peers in other processes, and clients that ask for TLS, use
   * TCP as ever. Default true; false makes every peer use TCP.
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
   * Once a large queue has drained (at least half of its jobs, and 1,000 or more, gone since its
   * peak, the heap 64 MiB or more above its level before) and the server is idle for a second, ask
   * V8 once for a memory-reducing garbage collection, so that the process gives the queue's memory
   * back to the operating system at once rather than after minutes of idling. It pauses the
   * process for tens of milliseconds (about 100 ms after a million jobs). Default true.
   */
  releaseMemoryAfterDrain?: boolean;
  /**
   * What the server keeps of ended background jobs, for `gearman.result` fetches and batches:
   * `maxAgeMs` (default 24 h), `maxCount` (100,000), `maxBytes` (64 MiB), `maxResultBytes` (16 MiB).
   * `false`: keep nothing, answer no fetch, run no batch (as gearmand).
   */
  results?: Partial<ResultRetention> | false;
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
  /** What the server keeps of ended jobs now (absent with `results: false`): outcomes, their bytes, batches running. */
  readonly results?: { readonly stored: number; readonly bytes: number; readonly batchesRunning: number };
}

/** An address the server listens on, once bound. */
export interface JobServerAddress {
  host: string;
  port: number;
  tls: boolean;
}

/** gearmand's verbose levels, most severe first. */
export const VERBOSE_LEVELS: readonly string[] = ['FATAL', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'];

const DEFAULT_KEEPALIVE_MS = 30_000;
/** The first byte of a TLS handshake record. */
const TLS_HANDSHAKE = 0x16;
/** Sweeps run at a quarter of the shortest timeout, within these bounds. */
const MIN_SWEEP_MS = 25;
const MAX_SWEEP_MS = 1000;
/** Refused connections are logged at most this often (with how many were refused meanwhile). */
const REFUSAL_LOG_MS = 10_000;

const TOO_MANY_CONNECTIONS = 'TOO_MANY_CONNECTIONS';

interface Listener {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
}

/** The default prefix, `H:<hostname>`, cut to what the handle style leaves room for. */
function defaultHandlePrefix(maxBytes: number): string {
  let prefix = `H:${hostname()}`;
  while (Buffer.byteLength(prefix) > maxBytes) prefix = prefix.slice(0, -1);
  return prefix;
}

function checkPort(port: number | undefined): number {
  const value = port ?? DEFAULT_GEARMAN_PORT;
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new RangeError(`port must be 0-65535, got ${port}`);
  return value;
}

/** An address as connections are counted by: IPv4-mapped IPv6 counts as its IPv4 address. */
function addressKey(address: string | undefined): string {
  return (address ?? '-').replace(/^::ffff:/i, '');
}

/**
 * A Gearman job server that clients and workers cannot tell from gearmand: the binary protocol
 * and the text admin protocol on one port, an in-memory queue, gearmand 2.0's scheduling rules;
 * with limits on what each peer may cost, optional TLS (mutual with a CA), and admin commands
 * that change state kept to trusted peers (docs/security.md).
 */
export class GearmanJobServer {
  private readonly listeners: Listener[];
  private readonly logger: GearmanLogger;
  private readonly context: ServerConnectionContext;
  private readonly broker: JobBroker;
  private readonly limits: JobServerLimits;
  /** Runs the TLS handshakes of the TLS listeners' sockets (it listens on nothing itself). */
  private readonly tlsServer: TlsServer | undefined;
  private readonly adminCommands: AdminCommandsSetting;
  private readonly adminCertificates: readonly string[];
  private readonly results: JobResults | undefined;
  private readonly batches: BatchCoordinator | undefined;
  /** Results, batches and queued jobs' handles in the sqlite queue's file, when there is one. */
  private persisted: SqliteResults | undefined;
  private readonly connections = new Set<ServerConnection>();
  /** Sockets accepted and not closed (TLS handshakes included), and their count by address. */
  private readonly sockets = new Set<FrameTransport>();
  private readonly socketsByAddress = new Map<string, number>();
  private servers: Server[] = [];
  private bound: JobServerAddress[] = [];
  private readonly inProcess: boolean;
  private unregisterInProcess: (() => void)[] = [];
  private readonly queueOptions: QueueStoreOptions | undefined;
  /** Stores background jobs; none with the memory queue, which keeps the broker free of lifecycle calls. */
  private readonly durable: DurableQueue | undefined;
  private opening = false;
  private closing: Promise<void> | undefined;
  private nextConnectionId = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly sweepMs: number;
  private sweeps = 0;
  private refusedSinceLog = 0;
  private lastRefusalLog = 0;
  /** Traffic of the connections closed so far. */
  private closedBytesReceived = 0;
  private closedBytesSent = 0;
  private readonly memoryRelease: MemoryRelease | undefined;

  constructor(options: GearmanJobServerOptions = {}) {
    if (options.listeners && (options.host !== undefined || options.port !== undefined)) {
      throw new RangeError('give either host and port or listeners, not both');
    }
    this.listeners = (options.listeners ?? [{ host: options.host, port: options.port, tls: options.tls !== undefined }]).map(
      (listener) => ({ host: listener.host ?? DEFAULT_GEARMAN_HOST, port: checkPort(listener.port), tls: listener.tls === true }),
    );
    if (this.listeners.length === 0) throw new RangeError('listeners must name at least one address');
    this.inProcess = options.inProcess ?? true;
    const jobRetries = options.jobRetries ?? 0;
    if (!Number.isInteger(jobRetries) || jobRetries < 0)
      throw new RangeError(`jobRetries must be a whole number ≥ 0, got ${options.jobRetries}`);
    const maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < 1 || maxPacketSize > 0xffffffff) {
      throw new RangeError(`maxPacketSize must be 1-4294967295 bytes, got ${options.maxPacketSize}`);
    }
    const jobHandles = options.jobHandles ?? 'unguessable';
    if (!JOB_HANDLE_STYLES.includes(jobHandles)) {
      throw new RangeError(`jobHandles must be one of ${JOB_HANDLE_STYLES.join(', ')}, got ${JSON.stringify(options.jobHandles)}`);
    }
    // Room for ':' and the counter (and the tag) within gearmand's 64-byte handle buffer.
    const maxPrefix = jobHandles === 'sequential' ? MAX_HANDLE_PREFIX_BYTES : MAX_UNGUESSABLE_PREFIX_BYTES;
    const handlePrefix = options.jobHandlePrefix ?? defaultHandlePrefix(maxPrefix);
    if (Buffer.byteLength(handlePrefix) > maxPrefix || handlePrefix.includes('\0')) {
      throw new RangeError(`jobHandlePrefix must be at most ${maxPrefix} bytes without NUL with ${jobHandles} handles`);
    }
    this.adminCommands = options.adminCommands ?? 'read-only';
    if (!ADMIN_COMMANDS_SETTINGS.includes(this.adminCommands)) {
      throw new RangeError(
        `adminCommands must be one of ${ADMIN_COMMANDS_SETTINGS.join(', ')}, got ${JSON.stringify(options.adminCommands)}`,
      );
    }
    this.adminCertificates = options.adminCertificates ?? [];
    this.limits = resolveJobServerLimits(options.limits);
    const tls = options.tls;
    if (this.listeners.some((listener) => listener.tls) && !tls) throw new RangeError('a listener with tls: true needs the tls option');
    const requestCert = tls?.requestCert ?? tls?.ca !== undefined;
    const rejectUnauthorized = tls?.rejectUnauthorized ?? tls?.ca !== undefined;
    if (tls) {
      if (!tls.pfx && !(tls.key && tls.cert)) throw new RangeError('tls needs key and cert (or pfx)');
      const { requestCert: _request, rejectUnauthorized: _reject, ...contextOptions } = tls;
      this.tlsServer = createTlsServer({
        ...contextOptions,
        requestCert,
        // Checked in onSecure instead, where the refusal can say why, to the peer and in the log.
        rejectUnauthorized: false,
        // A handshake has the time a packet has (Node's own default when that limit is off).
        ...(this.limits.packetTimeoutMs > 0 ? { handshakeTimeout: this.limits.packetTimeoutMs } : {}),
      });
      this.tlsServer.on('secureConnection', (socket: TLSSocket) => this.onSecure(socket, requestCert && rejectUnauthorized));
      this.tlsServer.on('tlsClientError', (error: Error, socket: TLSSocket) => {
        this.logger.warn(`connection from ${addressKey(socket.remoteAddress)} failed its TLS handshake: ${error.message}`);
      });
    }
    if (this.adminCertificates.length > 0 && !(tls && requestCert && rejectUnauthorized)) {
      throw new RangeError('adminCertificates needs tls with a ca, so that client certificates are verified');
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
    const timeouts = [this.limits.idleTimeoutMs, this.limits.packetTimeoutMs].filter((ms) => ms > 0);
    this.sweepMs = timeouts.length === 0 ? 0 : Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(Math.min(...timeouts) / 4)));

    const queueType = options.queue?.type ?? 'memory';
    if (queueType !== 'memory' && queueType !== 'sqlite') {
      throw new TypeError(`queue.type must be 'memory' or 'sqlite', got ${JSON.stringify(queueType)}`);
    }
    if (options.queue?.type === 'sqlite') {
      this.queueOptions = options.queue;
      this.durable = new DurableQueue(options.queue.storeOnShutdown === true);
    }
    // The prefix as the byte string handles are made of.
    const handleBytes = Buffer.from(handlePrefix, 'utf8').toString('latin1');
    let reserved: ReservedFunctions | undefined;
    let batches: BatchCoordinator | undefined;
    if (options.results !== false) {
      this.results = new JobResults(() => this.broker, resultRetention(options.results));
      batches = new BatchCoordinator(() => this.broker, this.results);
      this.results.attachBatches(batches);
      this.batches = batches;
      reserved = new ReservedFunctions(this.results, batches, `${handleBytes}:`);
    }
    const lifecycles = [this.durable, this.results, batches, options.lifecycle].filter((lifecycle) => lifecycle !== undefined);
    this.broker = new JobBroker({
      handlePrefix: handleBytes,
      jobHandles,
      jobRetries,
      maxQueuedJobsPerFunction: this.limits.maxQueuedJobsPerFunction,
      maxQueuedJobsPerConnection: this.limits.maxQueuedJobsPerConnection,
      maxQueuedBytes: this.limits.maxQueuedBytes,
      warn: (message) => this.logger.warn(message),
      // After the turn's reads: a job submitted in them goes to a worker whose GRAB_JOB found nothing.
      atEndOfTurn: (callback) => setImmediate(callback),
      // The durable queue first (it stores a job before its JOB_CREATED), then the results, then the
      // batches (a batch item's outcome is looked at before its batch moves on), then the app's own.
      lifecycle: lifecycles.length === 0 ? undefined : lifecycles.length === 1 ? lifecycles[0] : combineLifecycles(...lifecycles),
    });
    if (options.releaseMemoryAfterDrain ?? true) {
      const broker = this.broker;
      this.memoryRelease = new MemoryRelease(
        { jobs: () => broker.jobCount, jobsCreated: () => broker.jobsCreated, committedHeap: committedHeapBytes },
        () => this.releaseMemory(),
      );
    }
    const adminContext = { broker: this.broker, version: JOB_SERVER_VERSION, verbose, results: this.results, batches };
    this.context = {
      broker: this.broker,
      exceptions: options.exceptions ?? false,
      maxPacketSize,
      keepAliveMs,
      limits: this.limits,
      reserved,
      readTurns: this.limits.framesPerTurn > 0 ? new ReadTurns(this.limits.framesPerTurn) : undefined,
      currentSweep: () => this.sweeps,
      runAdmin: (line, access) => runAdminCommand(adminContext, line, access),
      connectionClosed: (con, error) => this.onConnectionClosed(con, error),
      logWarning: (message) => this.logger.warn(message),
      logError: (message) => this.logger.error(message),
      logDebug: (message) => this.logger.debug?.(message),
    };
  }

  /**
   * Opens the queue store and puts its jobs back (a persistent queue), then starts accepting
   * connections on every listener; resolves once all are bound (rejects, bound none, if one
   * fails). Rejects with GearmanQueueStoreError when the queue file cannot be used (the server
   * then does not start), GearmanMissingPeerError when the store's package is not installed.
   */
  async listen(): Promise<void> {
    if (this.servers.length > 0 || this.opening) throw new Error('GearmanJobServer is already listening');
    if (this.closing) throw new Error('GearmanJobServer is closed');
    if (this.durable) await this.openQueue(this.durable);
    try {
      await this.bindAll();
    } catch (error) {
      this.persisted?.close();
      this.durable?.close();
      throw error;
    }
  }

  private async openQueue(durable: DurableQueue): Promise<void> {
    this.opening = true;
    try {
      const store = await openQueueStore(this.queueOptions, (error) => this.logger.error(error.message));
      if (this.closing) {
        store.close();
        throw new Error('GearmanJobServer is closed');
      }
      let restored = 0;
      try {
        restored = this.restore(durable, store);
      } catch (error) {
        this.persisted?.close();
        this.persisted = undefined;
        store.close();
        throw error;
      }
      this.logger.log(`job queue ${store.description}: ${restored} background job(s) restored`);
    } finally {
      this.opening = false;
    }
  }

  /**
   * Puts the durable queue's jobs back; with the sqlite store and results on, first the results
   * it kept (in tables of its own in the same file), then the jobs (each under a new handle, the
   * one its submitter holds leading to it), then the batches that were running. Returns the jobs
   * restored.
   */
  private restore(durable: DurableQueue, store: QueueStore): number {
    const results = this.results;
    if (!results || !(store instanceof SqliteQueueStore)) {
      let count = 0;
      durable.attach(store, (job) => {
        this.broker.restore(job);
        count++;
      });
      return count;
    }
    const persisted = new SqliteResults(store.database as ResultsDatabase, (error) =>
      this.logger.error(`results could not be stored in ${store.description}: ${error.message}`),
    );
    this.persisted = persisted;
    store.beforeCommit(() => persisted.flush());
    const handles = persisted.loadHandles();
    const kept = persisted.loadResults();
    const batches = persisted.loadBatches();
    // No new job may take a handle something kept still answers to (sequential handles).
    for (const result of kept) this.broker.reserveHandle(result.handle);
    for (const { handle } of handles.values()) this.broker.reserveHandle(handle);
    for (const batch of batches) this.broker.reserveHandle(batch.handle);
    const restored: { handle: string; unique: string; functionName: string; data: string; before: PersistedHandle | undefined }[] = [];
    durable.attach(store, (job) => {
      restored.push({ ...job, handle: this.broker.restore(job), before: handles.get(handleKey(job.unique, job.functionName)) });
    });
    results.persistTo(persisted, kept);
    this.batches?.persistTo(persisted, batches, restored);
    const queuedHandles: QueuedHandle[] = [];
    for (const job of restored) {
      const restoredJob = this.broker.findByHandle(job.handle);
      // A batch's job, or one the batches dropped (its outcome was already kept).
      if (this.batches?.owns(job.handle) || !restoredJob) continue;
      results.restored(job.handle, job.data, job.before && { ...job.before, unique: job.unique });
      // A job queued into the file by another server: its handle from now on is this one.
      const { handle, createdAt } = job.before ?? { handle: job.handle, createdAt: Date.now() };
      queuedHandles.push({ id: restoredJob.id, handle, unique: job.unique, functionName: job.functionName, createdAt });
    }
    // Handles of jobs the queue no longer holds (they ended before a crash let the queue delete them) go.
    persisted.replaceHandles(queuedHandles);
    return restored.length;
  }

  private async bindAll(): Promise<void> {
    const servers = this.listeners.map((listener) => createServer((socket) => this.accept(socket, listener)));
    this.servers = servers;
    try {
      this.bound = await Promise.all(servers.map((server, index) => this.bind(server, this.listeners[index])));
    } catch (error) {
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      this.servers = [];
      throw error;
    }
    for (const server of servers) server.on('error', (error) => this.logger.error(`listening socket: ${error.message}`));
    // The in-memory channel stands for plaintext TCP only: a TLS port is never reached without TLS.
    if (this.inProcess) {
      for (const [index, address] of this.bound.entries()) {
        if (address.tls) continue;
        const listener = this.listeners[index];
        this.unregisterInProcess.push(registerInProcessServer(address.host, address.port, (socket) => this.accept(socket, listener)));
      }
    }
    for (const address of this.bound) this.logger.log(`listening on ${address.host}:${address.port}${address.tls ? ' (TLS)' : ''}`);
    const exposed = this.bound.filter((address) => !address.tls && !isLoopbackAddress(address.host));
    if (exposed.length > 0) {
      this.logger.warn(
        `listening on ${exposed.map((address) => `${address.host}:${address.port}`).join(', ')} without TLS: ` +
          'whoever can reach it reads and submits jobs in the clear (see docs/security.md)',
      );
    }
    if (this.sweepMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), this.sweepMs);
      this.sweepTimer.unref();
    }
    this.memoryRelease?.start();
  }

  private bind(server: Server, listener: Listener): Promise<JobServerAddress> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(listener.port, listener.host, () => {
        server.off('error', reject);
        const address = server.address();
        if (!address || typeof address !== 'object') return reject(new Error(`no address for ${listener.host}:${listener.port}`));
        resolve({ host: address.address, port: address.port, tls: listener.tls });
      });
    });
  }

  /** Where the server listens (its first listener). Throws before listen() has resolved. */
  address(): { host: string; port: number } {
    const [first] = this.addresses();
    return { host: first.host, port: first.port };
  }

  /** Every address the server listens on, in the order of `listeners`. Throws before listen() has resolved. */
  addresses(): JobServerAddress[] {
    if (this.bound.length === 0) throw new Error('GearmanJobServer is not listening');
    return this.bound.map((address) => ({ ...address }));
  }

  /** Stops accepting, closes every connection and releases the ports. Queued jobs are dropped. Safe to call twice. */
  /** Connections open now and bytes received and sent so far: a read-only view for metrics. */
  stats(): JobServerStats {
    let bytesReceived = this.closedBytesReceived;
    let bytesSent = this.closedBytesSent;
    for (const con of this.connections) {
      bytesReceived += con.bytesReceived;
      bytesSent += con.bytesSent;
    }
    const results = this.results && {
      stored: this.results.stored.count,
      bytes: this.results.stored.bytes,
      batchesRunning: this.batches?.running ?? 0,
    };
    return { connections: this.connections.size, bytesReceived, bytesSent, ...(results ? { results } : {}) };
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
    clearInterval(this.sweepTimer);
    for (const unregister of this.unregisterInProcess) unregister();
    this.unregisterInProcess = [];
    this.memoryRelease?.stop();
    this.broker.close();
    this.results?.close();
    const closed = Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    for (const con of this.connections) con.destroy();
    this.connections.clear();
    // Sockets still in a TLS handshake, or refused and closing.
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.bound = [];
    // After the broker stopped: commits what is pending (results first: the queue closes the file),
    // writes the queue for --store-queue-on-shutdown.
    this.persisted?.close();
    this.durable?.close();
  }

  /** A socket on a listener: counted, refused over the connection limits, then served (after its TLS handshake on a TLS listener). */
  /** A socket on a listener, or the job server's end of an in-memory channel to a plaintext listener's address. */
  private accept(socket: FrameTransport, listener: Listener): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const key = addressKey(socket.remoteAddress);
    const refusal = this.connectionRefusal(key);
    if (refusal) {
      this.refuse(socket, listener, refusal);
      return;
    }
    this.sockets.add(socket);
    this.socketsByAddress.set(key, (this.socketsByAddress.get(key) ?? 0) + 1);
    socket.on('close', () => {
      this.sockets.delete(socket);
      const left = (this.socketsByAddress.get(key) ?? 1) - 1;
      if (left === 0) this.socketsByAddress.delete(key);
      else this.socketsByAddress.set(key, left);
    });
    // Only TCP sockets reach a TLS listener: the in-memory channel stands for plaintext ones.
    if (listener.tls && socket instanceof Socket) {
      this.startTls(socket);
      return;
    }
    if (socket instanceof Socket) {
      socket.once('data', (chunk: Buffer) => {
        // A TLS client on a plaintext port would wait for a handshake that never comes: tell the log and close.
        if (chunk[0] !== TLS_HANDSHAKE) return;
        this.logger.warn(`connection from ${key} closed: it began a TLS handshake on a plaintext port`);
        socket.destroy();
      });
    }
    this.serve(socket, []);
  }

  private connectionRefusal(key: string): string | undefined {
    const { maxConnections, maxConnectionsPerAddress } = this.limits;
    if (maxConnections > 0 && this.sockets.size >= maxConnections) {
      return `The job server has ${maxConnections} connections open, its limit (maxConnections)`;
    }
    if (maxConnectionsPerAddress > 0 && (this.socketsByAddress.get(key) ?? 0) >= maxConnectionsPerAddress) {
      return `${key} has ${maxConnectionsPerAddress} connections open, the limit per address (maxConnectionsPerAddress)`;
    }
    return undefined;
  }

  /** Says why in an ERROR packet (plaintext listeners only: a TLS client could not read it) and closes. */
  private refuse(socket: FrameTransport, listener: Listener, reason: string): void {
    socket.on('error', () => undefined);
    if (listener.tls) {
      socket.destroy();
    } else {
      socket.write(encodeResponse(PacketType.ERROR, TOO_MANY_CONNECTIONS, reason));
      socket.end();
    }
    this.refusedSinceLog++;
    const now = Date.now();
    if (now - this.lastRefusalLog >= REFUSAL_LOG_MS) {
      this.logger.warn(`refused ${this.refusedSinceLog} connection(s) (the last from ${addressKey(socket.remoteAddress)}): ${reason}`);
      this.refusedSinceLog = 0;
      this.lastRefusalLog = now;
    }
  }

  /**
   * A TLS listener reads the first byte before anything else: a TLS handshake goes on to the TLS
   * server (and to serve() once secure); a plaintext Gearman packet or admin line gets a plaintext
   * ERROR saying this port takes TLS only, and the connection is closed. That first byte, and the
   * handshake, have packetTimeoutMs.
   */
  private startTls(socket: Socket): void {
    const peer = addressKey(socket.remoteAddress);
    const deadlineMs = this.limits.packetTimeoutMs;
    const timer =
      deadlineMs > 0
        ? setTimeout(() => {
            this.logger.warn(`connection from ${peer} closed: it sent nothing within ${deadlineMs} ms (packetTimeoutMs)`);
            socket.destroy();
          }, deadlineMs)
        : undefined;
    socket.on('error', () => undefined);
    socket.once('close', () => clearTimeout(timer));
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      if (chunk[0] !== TLS_HANDSHAKE) {
        this.logger.warn(`connection from ${peer} closed: it spoke plaintext to a TLS port`);
        const text = 'This port takes TLS connections only: connect with TLS';
        // A binary client reads an ERROR packet, an admin tool a line.
        socket.end(
          chunk[0] === 0 ? encodeResponse(PacketType.ERROR, 'TLS_REQUIRED', text) : `ERR TLS_REQUIRED ${text.replace(/ /g, '+')}\r\n`,
        );
        return;
      }
      // The TLS socket reads what was put back before it reads the socket.
      socket.unshift(chunk);
      this.tlsServer!.emit('connection', socket);
    });
  }

  /**
   * A TLS handshake finished. When client certificates are required, one that is missing or not
   * verified is refused here rather than inside the handshake, so that both sides learn why: the
   * log, and the peer, in an ERROR packet over the encrypted connection.
   */
  private onSecure(socket: TLSSocket, verifyClients: boolean): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (verifyClients && !socket.authorized) {
      const presented = socket.getPeerCertificate()?.raw !== undefined;
      const reason = presented
        ? `its client certificate was refused (${String(socket.authorizationError)})`
        : 'it presented no client certificate, which this server requires';
      this.logger.warn(`connection from ${addressKey(socket.remoteAddress)} failed its TLS handshake: ${reason}`);
      socket.on('error', () => undefined);
      socket.end(encodeResponse(PacketType.ERROR, 'CERTIFICATE_REQUIRED', `The job server refused this connection: ${reason}`));
      return;
    }
    this.serve(socket, socket.authorized ? certificateNames(socket.getPeerCertificate()) : []);
  }

  private serve(socket: FrameTransport, certificateNamesOfPeer: readonly string[]): void {
    const access = adminAccessFor(
      this.adminCommands,
      { address: socket.remoteAddress, certificateNames: certificateNamesOfPeer },
      this.adminCertificates,
    );
    const con = new ServerConnection(this.nextConnectionId++, socket, this.context, access);
    this.connections.add(con);
  }

  private sweep(): void {
    const sweep = ++this.sweeps;
    for (const con of this.connections) {
      const overstay = con.sweep(sweep, this.sweepMs);
      if (overstay) this.evict(con, overstay);
    }
  }

  private evict(con: ServerConnection, overstay: Overstay): void {
    const { idleTimeoutMs, packetTimeoutMs } = this.limits;
    const who = `connection ${con.id} (${con.host})`;
    switch (overstay) {
      case 'idle':
        this.logger.debug?.(`${who} closed: idle for ${idleTimeoutMs} ms (idleTimeoutMs)`);
        con.end();
        return;
      case 'partial-packet':
        this.logger.warn(`${who} closed: a packet started arriving and was not whole within ${packetTimeoutMs} ms (packetTimeoutMs)`);
        con.sendPacketTimeout(packetTimeoutMs);
        return;
      case 'not-reading':
        this.logger.warn(`${who} closed: it read none of its ${con.owedBytes} bytes of replies for ${idleTimeoutMs} ms (idleTimeoutMs)`);
        con.drop();
        return;
    }
  }

  /** The collection MemoryRelease asks for, reported in the log. */
  private async releaseMemory(): Promise<void> {
    const before = committedHeapBytes();
    const ms = await collectGarbageReducingMemory();
    if (ms === undefined) return;
    const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
    this.logger.log(`a drained queue's memory given back: heap ${mib(before)} -> ${mib(committedHeapBytes())} in ${Math.round(ms)} ms`);
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
