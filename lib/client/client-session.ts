import { Fifo } from '../connection/fifo.js';
import { GearmanConnection, type GearmanConnectionHandler, type GearmanConnectionOptions } from '../connection/gearman-connection.js';
import type { ResolvedServerAddress } from '../connection/server-address.js';
import type { Packet } from '../protocol/decoder.js';
import { encodeRequest } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import { TrackedJob } from './client-job.js';
import { HandleTable } from './handle-table.js';
import {
  GearmanConnectionError,
  GearmanJobExceptionError,
  GearmanJobFailedError,
  GearmanQueueFullError,
  GearmanServerError,
} from '../common/errors.js';
import { statusNumber, type JobStatus, type UniqueJobStatus } from './job-status.js';

/** A request other than a foreground submit waiting for its reply. */
interface ReplyWaiter {
  readonly reply: PacketType;
  resolve(args: Buffer[]): void;
  reject(error: Error): void;
}

/** A request held in memory until the socket has room again. */
interface HeldRequest {
  readonly entry: TrackedJob | ReplyWaiter;
  readonly packet: Buffer;
}

/** What a session reports to the client that owns it. */
export interface ClientSessionOwner {
  sessionConnected(session: ClientSession): void;
  /** The session needed draining and no longer does (its held requests went out, or failed with the connection). */
  sessionDrained(session: ClientSession): void;
  sessionDisconnected(session: ClientSession, error: GearmanConnectionError): void;
  sessionReconnecting(session: ClientSession, delayMs: number): void;
  sessionError(session: ClientSession, error: Error): void;
}

const EXCEPTIONS_OPTION = 'exceptions';
/** Accepted by job servers that keep results and answer gearman.result (this package's); gearmand refuses it. */
const RESULTS_OPTION = 'results';

/**
 * A job handle as text. gearmand 1.1 sends the WORK_FAIL that replaces a WORK_EXCEPTION (for a
 * client without the exceptions option) with the handle's NUL terminator still attached.
 */
function handleText(bytes: Buffer): string {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0 ? bytes.length - 1 : bytes.length;
  return bytes.toString('utf8', 0, end);
}

/** Arguments 1-4 of STATUS_RES and STATUS_RES_UNIQUE, which share that layout: known, running, numerator, denominator. */
function progressOf(args: Buffer[]): Omit<JobStatus, 'handle'> {
  return {
    known: args[1].toString('latin1') === '1',
    running: args[2].toString('latin1') === '1',
    numerator: statusNumber(args[3]),
    denominator: statusNumber(args[4]),
  };
}

/**
 * The client's side of one job-server connection. The server answers requests in the order they
 * were sent, so replies (JOB_CREATED, STATUS_RES, ECHO_RES, OPTION_RES, ERROR) are matched to a
 * FIFO of requests; WORK_* packets are matched to jobs by handle.
 *
 * Backpressure: while the socket is backed up (its buffer over the high-water mark), requests are
 * held in memory, in order, and written as it drains; past `maxQueuedBytes` held, a request fails
 * at once with GearmanQueueFullError. So a job server that reads slowly costs bounded memory.
 */
export class ClientSession implements GearmanConnectionHandler {
  readonly connection: GearmanConnection;
  private readonly awaitingReply = new Fifo<TrackedJob | ReplyWaiter>();
  private readonly jobsByHandle = new HandleTable();
  private readonly held = new Fifo<HeldRequest>();
  private heldBytes = 0;
  /** needsDrain turned true: the owner hears when it turns false again. */
  private drainOwed = false;
  private heartbeat: NodeJS.Timeout | undefined;
  /** A request went out since the last heartbeat tick. */
  private sentSinceBeat = false;
  /** Whether this connection's server keeps results, asked once per connection. */
  private resultsProbe: Promise<boolean> | undefined;

  constructor(
    address: ResolvedServerAddress,
    options: GearmanConnectionOptions,
    private readonly owner: ClientSessionOwner,
    private readonly clientId: string | undefined,
    private readonly exceptions: boolean,
    private readonly maxQueuedBytes: number,
    /** An ECHO_REQ after this long without a request, so that a job server's idle timeout keeps the connection; 0 = none. */
    private readonly heartbeatMs = 0,
  ) {
    this.connection = new GearmanConnection(address, options, this);
  }

  get label(): string {
    return this.connection.label;
  }

  get isConnected(): boolean {
    return this.connection.isConnected;
  }

  /** Whether requests wait in memory, or the socket's buffer is over its high-water mark. */
  get needsDrain(): boolean {
    return this.held.length > 0 || (this.connection.isConnected && this.connection.isBackedUp);
  }

  /** Whether a foreground job with this handle is followed here. */
  hasJob(handle: string): boolean {
    return this.jobsByHandle.has(handle);
  }

  /** Sends an encoded foreground submit for the job. */
  submit(job: TrackedJob, packet: Buffer): void {
    if (job.isSettled) return;
    if (!this.isConnected) return job.fail(this.notConnected());
    job.attach(() => this.forget(job));
    this.send(job, packet);
  }

  /** Sends an encoded request and resolves with its reply's arguments. */
  request(packet: Buffer, reply: PacketType): Promise<Buffer[]> {
    if (!this.isConnected) return Promise.reject(this.notConnected());
    return new Promise<Buffer[]>((resolve, reject) => this.send({ reply, resolve, reject }, packet));
  }

  /** Writes the request now, or holds it while the socket is backed up (or others are held before it). */
  private send(entry: TrackedJob | ReplyWaiter, packet: Buffer): void {
    this.sentSinceBeat = true;
    if (this.held.length === 0 && !this.connection.isBackedUp) {
      this.awaitingReply.push(entry);
      if (!this.connection.write(packet)) this.drainOwed = true;
      return;
    }
    // An empty queue takes any request, so a single large one is never refused.
    if (this.held.length > 0 && this.heldBytes + packet.length > this.maxQueuedBytes) {
      const error = new GearmanQueueFullError(this.label, this.maxQueuedBytes);
      if (entry instanceof TrackedJob) entry.fail(error);
      else entry.reject(error);
      return;
    }
    this.drainOwed = true;
    this.held.push({ entry, packet });
    this.heldBytes += packet.length;
  }

  /** Writes held requests until the socket is backed up again; a job released meanwhile is skipped. */
  onDrain(): void {
    while (this.held.length > 0 && !this.connection.isBackedUp) {
      const { entry, packet } = this.held.shift()!;
      this.heldBytes -= packet.length;
      if (entry instanceof TrackedJob && entry.isSettled) continue;
      this.awaitingReply.push(entry);
      this.connection.write(packet);
    }
    this.reportDrained();
  }

  private reportDrained(): void {
    if (!this.drainOwed || this.needsDrain) return;
    this.drainOwed = false;
    this.owner.sessionDrained(this);
  }

  async getStatus(handle: string): Promise<JobStatus> {
    const args = await this.request(encodeRequest(PacketType.GET_STATUS, handle), PacketType.STATUS_RES);
    return { handle: args[0].toString('utf8'), ...progressOf(args) };
  }

  async getStatusUnique(unique: string): Promise<UniqueJobStatus> {
    const args = await this.request(encodeRequest(PacketType.GET_STATUS_UNIQUE, unique), PacketType.STATUS_RES_UNIQUE);
    return { unique: args[0].toString('utf8'), ...progressOf(args), waitingClients: statusNumber(args[5]) };
  }

  /** Whether the job server keeps results and answers gearman.result: OPTION_REQ `results`, asked once per connection. */
  supportsResults(): Promise<boolean> {
    if (this.resultsProbe) return this.resultsProbe;
    const probe: Promise<boolean> = this.request(encodeRequest(PacketType.OPTION_REQ, RESULTS_OPTION), PacketType.OPTION_RES).then(
      () => true,
      (error: Error) => {
        if (error instanceof GearmanServerError) return false;
        if (this.resultsProbe === probe) this.resultsProbe = undefined; // the connection failed: ask the next one
        throw error;
      },
    );
    this.resultsProbe = probe;
    return probe;
  }

  async echo(data: Buffer | string): Promise<Buffer> {
    const args = await this.request(encodeRequest(PacketType.ECHO_REQ, data), PacketType.ECHO_RES);
    return Buffer.from(args[0]);
  }

  onConnect(): void {
    // Before any submit: without this option gearmand turns WORK_EXCEPTION into WORK_FAIL.
    if (this.exceptions)
      this.request(encodeRequest(PacketType.OPTION_REQ, EXCEPTIONS_OPTION), PacketType.OPTION_RES).catch((error: Error) => {
        if (error instanceof GearmanServerError) {
          this.owner.sessionError(this, new GearmanServerError(error.code, `${this.label} refused the exceptions option: ${error.text}`));
        }
      });
    if (this.clientId !== undefined) this.connection.write(encodeRequest(PacketType.SET_CLIENT_ID, this.clientId));
    if (this.heartbeatMs > 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
      this.heartbeat.unref();
    }
    this.owner.sessionConnected(this);
  }

  /** Shows the job server that this quiet connection is still wanted (it costs one ECHO round trip). */
  private beat(): void {
    if (!this.sentSinceBeat && this.isConnected) this.echo('').catch(() => undefined);
    this.sentSinceBeat = false;
  }

  onPacket(packet: Packet): void {
    const { type, args } = packet;
    switch (type) {
      case PacketType.JOB_CREATED:
        return this.onJobCreated(args[0].toString('utf8'));
      case PacketType.WORK_DATA:
        return void this.route(args[0])?.emit('data', Buffer.from(args[1]));
      case PacketType.WORK_WARNING:
        return void this.route(args[0])?.emit('warning', Buffer.from(args[1]));
      case PacketType.WORK_STATUS:
        return void this.route(args[0])?.emit('status', statusNumber(args[1]), statusNumber(args[2]));
      case PacketType.WORK_COMPLETE:
        return this.endJobs(args[0], (job) => job.complete(Buffer.from(args[1])));
      case PacketType.WORK_FAIL:
        return this.endJobs(args[0], (job, handle) => job.fail(new GearmanJobFailedError(handle, job.functionName)));
      case PacketType.WORK_EXCEPTION:
        return this.endJobs(args[0], (job, handle) =>
          job.fail(new GearmanJobExceptionError(handle, job.functionName, Buffer.from(args[1]))),
        );
      case PacketType.ERROR:
        return this.onError(new GearmanServerError(args[0].toString('utf8'), args[1].toString('utf8')));
      case PacketType.STATUS_RES:
      case PacketType.STATUS_RES_UNIQUE:
      case PacketType.ECHO_RES:
      case PacketType.OPTION_RES:
        return this.onReply(packet);
      default:
        this.owner.sessionError(
          this,
          new GearmanConnectionError(`${this.label} sent an unexpected ${PacketType[type]} to a client; ignored`, this.label),
        );
    }
  }

  onDisconnect(error: GearmanConnectionError): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.resultsProbe = undefined; // the next connection may reach another server
    const unanswered = [...this.awaitingReply.takeAll(), ...this.held.takeAll().map((held) => held.entry)];
    this.heldBytes = 0;
    for (const entry of unanswered) {
      if (entry instanceof TrackedJob) entry.fail(this.jobLost(entry, error));
      else entry.reject(error);
    }
    for (const job of this.jobsByHandle.takeAll()) job.fail(this.jobLost(job, error));
    this.owner.sessionDisconnected(this, error);
    this.reportDrained();
  }

  onReconnecting(delayMs: number): void {
    this.owner.sessionReconnecting(this, delayMs);
  }

  onGiveUp(error: GearmanConnectionError): void {
    this.owner.sessionError(this, error);
  }

  private notConnected(): GearmanConnectionError {
    return new GearmanConnectionError(`Not connected to ${this.label}`, this.label);
  }

  private jobLost(job: TrackedJob, cause: GearmanConnectionError): GearmanConnectionError {
    const which = job.handle ? `job ${job.handle} (${job.functionName})` : `a ${job.functionName} job`;
    // The socket's own error (ECONNRESET, ...) when there is one, with its code, as Nest's clients report it.
    return new GearmanConnectionError(`${cause.message}; ${which} was in flight on it`, this.label, {
      cause: cause.cause ?? cause,
      code: cause.code,
    });
  }

  private onJobCreated(handle: string): void {
    const entry = this.awaitingReply.shift();
    if (entry instanceof TrackedJob) {
      if (entry.isSettled) {
        this.jobsByHandle.addReleased(handle); // released while waiting: its packets are dropped
        return;
      }
      this.jobsByHandle.add(handle, entry);
      entry.markCreated(handle);
    } else if (entry && entry.reply === PacketType.JOB_CREATED) {
      entry.resolve([Buffer.from(handle)]);
    } else {
      this.outOfOrder(PacketType.JOB_CREATED, entry);
    }
  }

  private onReply(packet: Packet): void {
    const entry = this.awaitingReply.shift();
    if (entry && !(entry instanceof TrackedJob) && entry.reply === packet.type) entry.resolve(packet.args);
    else this.outOfOrder(packet.type, entry);
  }

  private onError(error: GearmanServerError): void {
    const entry = this.awaitingReply.shift();
    if (entry instanceof TrackedJob) entry.fail(error);
    else if (entry) entry.reject(error);
    else this.owner.sessionError(this, new GearmanServerError(error.code, `${this.label} sent an unsolicited error: ${error.text}`));
  }

  /** A reply that matches no request: the two sides disagree, so nothing on this connection can be trusted. */
  private outOfOrder(type: PacketType, entry: TrackedJob | ReplyWaiter | undefined): void {
    const expected = entry === undefined ? 'nothing' : entry instanceof TrackedJob ? 'JOB_CREATED' : PacketType[entry.reply];
    const error = new GearmanConnectionError(`${this.label} sent ${PacketType[type]} where ${expected} was expected`, this.label);
    if (entry instanceof TrackedJob) entry.fail(this.jobLost(entry, error));
    else entry?.reject(error);
    this.connection.drop(error);
  }

  private route(handleBytes: Buffer): TrackedJob | undefined {
    return this.jobsByHandle.route(handleText(handleBytes));
  }

  private endJobs(handleBytes: Buffer, end: (job: TrackedJob, handle: string) => void): void {
    const handle = handleText(handleBytes);
    for (const job of this.jobsByHandle.end(handle)) end(job, handle);
  }

  private forget(job: TrackedJob): void {
    // Still awaiting JOB_CREATED: onJobCreated sees it settled and drops it.
    if (job.handle !== undefined) this.jobsByHandle.forget(job.handle, job);
  }
}
