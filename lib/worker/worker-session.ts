import { GearmanConnection, type GearmanConnectionHandler, type GearmanConnectionOptions } from '../connection/gearman-connection.js';
import type { ResolvedServerAddress } from '../connection/server-address.js';
import type { Packet } from '../protocol/decoder.js';
import { encodeRequest } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import { GearmanConnectionError, GearmanQueueFullError, GearmanServerError } from '../common/errors.js';
import { WorkerJob, type WorkerJobChannel, type WorkerJobRecorder } from './worker-job.js';

/** A registered function as the sessions need it. */
export interface RegisteredFunction {
  readonly timeoutMs: number | undefined;
}

/** What a session needs from the worker that owns it. */
export interface WorkerSessionOwner {
  readonly functions: ReadonlyMap<string, RegisteredFunction>;
  /** Bytes a connection may hold unsent before a job's progress updates are refused. */
  readonly maxQueuedBytes: number;
  readonly clientId: string | undefined;
  /** Jobs the worker may start now, over all its connections: its capacity less the jobs running and the grabs awaiting an answer. */
  freeSlots(): number;
  /** Jobs the worker may run at once now: the largest burst of grabs worth sending. */
  capacity(): number;
  readonly recorder: WorkerJobRecorder | undefined;
  recorderFailed(job: WorkerJob, error: unknown): void;
  /** Whether the worker stopped grabbing (stopping or stopped). */
  isStopping(): boolean;
  runJob(job: WorkerJob): void;
  /** A slot this session held is free again (its job ended, or its grabs found none): any connection may grab. */
  jobEnded(session: WorkerSession): void;
  sessionConnected(session: WorkerSession): void;
  sessionDisconnected(session: WorkerSession, error: GearmanConnectionError): void;
  sessionReconnecting(session: WorkerSession, delayMs: number): void;
  sessionError(session: WorkerSession, error: Error): void;
  /** A session has no job in flight and no grab outstanding. */
  sessionIdle(session: WorkerSession): void;
  /** A job ended, or was abandoned with its connection. */
  jobFinished(job: WorkerJob): void;
}

const GRAB_JOB_UNIQ = encodeRequest(PacketType.GRAB_JOB_UNIQ);
const PRE_SLEEP = encodeRequest(PacketType.PRE_SLEEP);

/**
 * How much later than the worker the job server's CAN_DO_TIMEOUT fires: it is the backstop for a
 * worker too stuck to end the job itself (a blocked event loop), never the first to act.
 */
export const SERVER_TIMEOUT_GRACE_MS = 1000;

/** CAN_DO, or CAN_DO_TIMEOUT when the function has a timeout. */
function canDoPacket(name: string, fn: RegisteredFunction): Buffer {
  return fn.timeoutMs === undefined
    ? encodeRequest(PacketType.CAN_DO, name)
    : encodeRequest(PacketType.CAN_DO_TIMEOUT, name, String(fn.timeoutMs + SERVER_TIMEOUT_GRACE_MS));
}

/**
 * The worker's side of one job-server connection: takes jobs while the worker has free slots (its
 * concurrency is shared by all its connections), never more than it can start at once.
 * Each wake-up sends a burst of GRAB_JOB_UNIQ followed by PRE_SLEEP in one write; the server
 * answers the grabs, then either sends NOOP at once (more jobs wait) or sends it when the next job
 * arrives. Between that PRE_SLEEP and its NOOP the session sends no grab, so an idle worker is
 * silent and a busy one asks exactly when there is work.
 */
export class WorkerSession implements GearmanConnectionHandler, WorkerJobChannel {
  readonly connection: GearmanConnection;
  private readonly running = new Set<WorkerJob>();
  private grabsOutstanding = 0;
  private sleeping = false;
  /**
   * Grabs in the next burst (never more than the free slots): doubles while every grab finds a
   * job, shrinks to the number found otherwise. A lone job thus costs one grab, not one per slot.
   */
  private burst: number;
  private burstSent = 0;
  private burstAssigned = 0;

  constructor(
    address: ResolvedServerAddress,
    options: GearmanConnectionOptions,
    private readonly owner: WorkerSessionOwner,
  ) {
    this.connection = new GearmanConnection(address, options, this);
    this.burst = owner.capacity();
  }

  get label(): string {
    return this.connection.label;
  }

  get recorder(): WorkerJobRecorder | undefined {
    return this.owner.recorder;
  }

  recorderFailed(job: WorkerJob, error: unknown): void {
    this.owner.recorderFailed(job, error);
  }

  /** No job in flight and no grab awaiting its answer. */
  get isIdle(): boolean {
    return this.running.size === 0 && this.grabsOutstanding === 0;
  }

  get jobsInFlight(): number {
    return this.running.size;
  }

  /** Grabs sent whose JOB_ASSIGN or NO_JOB has not arrived yet: slots promised to this connection. */
  get pendingGrabs(): number {
    return this.grabsOutstanding;
  }

  /** Registers a function on a live connection; wakes the session, since queued jobs of it wake nobody. */
  announce(name: string, fn: RegisteredFunction): void {
    if (!this.connection.isConnected) return;
    this.connection.write(canDoPacket(name, fn));
    this.sleeping = false;
    this.grab();
  }

  /** Grabs again now, as a NOOP would. */
  wake(): void {
    this.sleeping = false;
    this.grab();
  }

  withdraw(name: string): void {
    this.connection.write(encodeRequest(PacketType.CANT_DO, name));
  }

  /**
   * Sends a burst of grabs for free slots, then PRE_SLEEP; until the NOOP that answers it nothing
   * more is asked. Not while results are still queued for a slow server.
   */
  grab(): void {
    if (
      this.owner.isStopping() ||
      this.sleeping ||
      this.owner.functions.size === 0 ||
      !this.connection.isConnected ||
      this.connection.isBackedUp
    )
      return;
    const free = this.owner.freeSlots();
    if (free <= 0) return;
    // Every answer to the last burst is in (the NOOP that woke us came after them): size the next one.
    if (this.burstSent > 0) {
      this.burst =
        this.burstAssigned >= this.burstSent
          ? Math.min(this.owner.capacity(), Math.max(this.burst, this.burstSent * 2))
          : Math.max(1, this.burstAssigned);
    }
    const count = Math.min(free, this.burst);
    for (let i = 0; i < count; i++) this.connection.write(GRAB_JOB_UNIQ);
    this.grabsOutstanding += count;
    this.burstSent = count;
    this.burstAssigned = 0;
    this.sleeping = true;
    this.connection.write(PRE_SLEEP);
  }

  send(packet: Buffer): boolean {
    return this.connection.write(packet);
  }

  sendUpdate(packet: Buffer): void {
    // An empty buffer takes any update, so one large one is never refused.
    const queued = this.connection.queuedBytes;
    if (queued > 0 && queued + packet.length > this.owner.maxQueuedBytes) {
      throw new GearmanQueueFullError(this.label, this.owner.maxQueuedBytes);
    }
    this.connection.write(packet);
  }

  jobEnded(job: WorkerJob): void {
    if (!this.running.delete(job)) return;
    this.owner.jobFinished(job);
    this.owner.jobEnded(this);
    if (this.isIdle) this.owner.sessionIdle(this);
  }

  onConnect(): void {
    this.sleeping = false;
    this.grabsOutstanding = 0;
    this.burstSent = 0;
    const { clientId, functions } = this.owner;
    if (clientId !== undefined) this.connection.write(encodeRequest(PacketType.SET_CLIENT_ID, clientId));
    for (const [name, fn] of functions) this.connection.write(canDoPacket(name, fn));
    this.owner.sessionConnected(this);
    this.grab();
  }

  onPacket(packet: Packet): void {
    const { type, args } = packet;
    switch (type) {
      case PacketType.NOOP:
        this.sleeping = false;
        return this.grab();
      case PacketType.NO_JOB:
        return this.onNoJob();
      case PacketType.JOB_ASSIGN_UNIQ:
        return this.onJobAssigned(args[0], args[1], args[2].toString('utf8'), args[3]);
      case PacketType.JOB_ASSIGN:
        return this.onJobAssigned(args[0], args[1], '', args[2]);
      case PacketType.ERROR:
        return this.owner.sessionError(
          this,
          new GearmanServerError(args[0].toString('utf8'), `${this.label}: ${args[1].toString('utf8')}`),
        );
      case PacketType.ECHO_RES:
      case PacketType.OPTION_RES:
        return;
      default:
        this.owner.sessionError(
          this,
          new GearmanConnectionError(`${this.label} sent an unexpected ${PacketType[type]} to a worker; ignored`, this.label),
        );
    }
  }

  onDisconnect(error: GearmanConnectionError): void {
    // The server requeues whatever this connection held; the handlers still running are cut loose.
    for (const job of this.running) {
      job.abandon(error);
      this.owner.jobFinished(job);
    }
    this.running.clear();
    this.grabsOutstanding = 0;
    this.sleeping = false;
    this.owner.sessionDisconnected(this, error);
    this.owner.sessionIdle(this);
  }

  onDrain(): void {
    this.grab();
  }

  onReconnecting(delayMs: number): void {
    this.owner.sessionReconnecting(this, delayMs);
  }

  onGiveUp(error: GearmanConnectionError): void {
    this.owner.sessionError(this, error);
  }

  private onNoJob(): void {
    if (this.grabsOutstanding > 0) this.grabsOutstanding--;
    // Slots are shared by every connection: grabs this one held back another that found none free,
    // and that one has sent no PRE_SLEEP, so its server would never wake it. Once this burst is
    // answered, the others try again.
    if (this.grabsOutstanding === 0) this.owner.jobEnded(this);
    if (this.isIdle) this.owner.sessionIdle(this);
  }

  private onJobAssigned(handle: Buffer, functionName: Buffer, unique: string, data: Buffer): void {
    if (this.grabsOutstanding > 0) this.grabsOutstanding--;
    this.burstAssigned++;
    const job = new WorkerJob(this, handle.toString('utf8'), functionName.toString('utf8'), unique, Buffer.from(data));
    this.running.add(job);
    this.owner.runJob(job);
  }
}
