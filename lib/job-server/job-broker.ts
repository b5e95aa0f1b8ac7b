import { encodeByteStringResponse } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import type { BrokerPeer } from './broker-peer.js';
import { DelayedJobs } from './delayed-jobs.js';
import { GearmanFunction } from './gearman-function.js';
import { MAX_UNIQUE_BYTES, MIN_WORKER_TIMEOUT_MS, storedDenominator, storedNumerator } from './gearmand-limits.js';
import { Job, type Priority, type RunState } from './job.js';
import { createJobHandles, type JobHandles, type JobHandleStyle } from './job-handles.js';
import type { JobLifecycle, JobOutcome, JobView, RequeueReason, WorkUpdate } from './job-lifecycle.js';
import { JobTable } from './job-table.js';
import { JOB_OVERHEAD_BYTES } from './server-limits.js';
import { PeerState } from './peer-state.js';

const NOOP = encodeByteStringResponse(PacketType.NOOP, []);
const NO_JOB = encodeByteStringResponse(PacketType.NO_JOB, []);
const QUEUE_FULL = encodeByteStringResponse(PacketType.ERROR, ['QUEUE_ERROR', 'Job queue is full']);
const NOT_ACCEPTED = encodeByteStringResponse(PacketType.ERROR, ['QUEUE_ERROR', 'Job could not be stored']);
// gearmand's texts for WORK_* about a job the connection does not hold.
const NOT_FOUND_RESULT = encodeByteStringResponse(PacketType.ERROR, ['JOB_NOT_FOUND', 'Job given in work result not found']);
const NOT_FOUND_DATA = encodeByteStringResponse(PacketType.ERROR, ['JOB_NOT_FOUND', 'Job does not exist on server']);
const NOT_FOUND_EXCEPTION = encodeByteStringResponse(PacketType.ERROR, [
  'JOB_NOT_FOUND',
  'An exception was received for a job that does not exist',
]);

const FAILED: JobOutcome = { kind: 'fail' };
const RETRIES_EXHAUSTED: JobOutcome = { kind: 'retries-exhausted' };
const CANCELLED: JobOutcome = { kind: 'cancelled' };
const ABANDONED: JobOutcome = { kind: 'abandoned' };

export interface BrokerOptions {
  /** Handles start with `<prefix>:`; a byte string (latin1). */
  readonly handlePrefix: string;
  /** Default `unguessable`. */
  readonly jobHandles?: JobHandleStyle;
  /** The `maxqueue` of a function until the admin command sets one; 0 = none (the default). */
  readonly maxQueuedJobsPerFunction?: number;
  /** Jobs one peer's submits may have here at once; 0 = no limit (the default). */
  readonly maxQueuedJobsPerConnection?: number;
  /** The estimated memory of every job here (unique id, payload and JOB_OVERHEAD_BYTES each); 0 = no limit (the default). */
  readonly maxQueuedBytes?: number;
  /** A job whose worker vanishes this many times is failed; 0 = never. */
  readonly jobRetries: number;
  readonly warn: (message: string) => void;
  /** Follows every job (see JobLifecycle); none by default. */
  readonly lifecycle?: JobLifecycle;
  /**
   * Runs a callback at the end of the current turn of the event loop (the server passes
   * setImmediate): a GRAB_JOB that finds nothing is answered then, see grab. Absent: NO_JOB at once.
   */
  readonly atEndOfTurn?: (callback: () => void) => void;
}

/** One SUBMIT_JOB* packet, read. Strings are byte strings (latin1). */
export interface SubmitRequest {
  readonly functionName: string;
  /** At most MAX_UNIQUE_BYTES (the connection refuses longer ones). */
  readonly unique: string;
  readonly data: string;
  readonly priority: Priority;
  readonly background: boolean;
  /** SUBMIT_REDUCE_JOB*: the reducer's name, handed out by JOB_ASSIGN_ALL. */
  readonly reducer?: string;
  /** Epoch time in ms to run at (SUBMIT_JOB_EPOCH, SUBMIT_JOB_SCHED); absent, 0 or past: at once. */
  readonly runAt?: number;
}

/** A background job a durable store kept, to put back with JobBroker.restore. Strings are byte strings (latin1). */
export interface StoredJob {
  readonly functionName: string;
  readonly unique: string;
  readonly data: string;
  readonly priority: Priority;
  /** Epoch time in ms to run at; absent, 0 or past: at once. */
  readonly runAt?: number;
}

export type GrabKind = PacketType.GRAB_JOB | PacketType.GRAB_JOB_UNIQ | PacketType.GRAB_JOB_ALL;
export type WorkUpdateType = PacketType.WORK_DATA | PacketType.WORK_WARNING | PacketType.WORK_STATUS;
export type WorkEndType = PacketType.WORK_COMPLETE | PacketType.WORK_FAIL | PacketType.WORK_EXCEPTION;

/**
 * The job server's core: functions and their queues, jobs, which worker holds what, who waits for
 * which result, wake-ups, retries and timers. It sees peers only through BrokerPeer (send packets,
 * read their id for listings), so it runs and is tested without sockets; the connection reads
 * packets and calls it, the admin commands read and change it through its methods.
 * Every per-job step is O(1) (maps by handle and by unique id, intrusive queues); picking a job
 * for a worker looks once at each function that worker can do.
 */
export class JobBroker {
  private readonly functionsByName = new Map<string, GearmanFunction>();
  /** Every job by the counter in its handle. */
  private readonly jobs = new JobTable();
  private readonly peerStates = new Set<PeerState>();
  /** Workers whose GRAB_JOB found nothing, answered at the end of the turn (see grab). */
  private readonly grabsWaiting = new Map<PeerState, GrabKind>();
  private grabsScheduled = false;
  private readonly answerGrabsNow = () => this.answerGrabs();
  private readonly handles: JobHandles;
  private readonly delayed = new DelayedJobs((job) => this.enqueue(this.functionOf(job), job));
  /** Reducer names of the few jobs that have one (reduce jobs), kept beside the job records. */
  private readonly reducers = new Map<Job, string>();
  private readonly lifecycle: JobLifecycle | undefined;
  /** Jobs whose `accepted` hook has not settled: true once accepted, false when refused. */
  private readonly accepting = new Map<Job, Promise<boolean>>();
  /** Who submitted each job, kept only under maxQueuedJobsPerConnection (none by default: no cost per job). */
  private readonly submitters: Map<Job, PeerState> | undefined;
  private readonly maxPerConnection: number;
  private readonly maxBytes: number;
  private queuedBytes = 0;
  private readonly connectionFull: Buffer;
  private readonly memoryFull: Buffer;
  private nextId = 1;

  constructor(private readonly options: BrokerOptions) {
    this.handles = createJobHandles(options.jobHandles ?? 'unguessable', options.handlePrefix);
    this.lifecycle = options.lifecycle;
    this.maxPerConnection = options.maxQueuedJobsPerConnection ?? 0;
    this.maxBytes = options.maxQueuedBytes ?? 0;
    if (this.maxPerConnection > 0) this.submitters = new Map();
    this.connectionFull = encodeByteStringResponse(PacketType.ERROR, [
      'QUEUE_ERROR',
      `This connection has ${this.maxPerConnection} jobs queued, its limit (maxQueuedJobsPerConnection)`,
    ]);
    this.memoryFull = encodeByteStringResponse(PacketType.ERROR, [
      'QUEUE_ERROR',
      `The job server's queue is full: ${this.maxBytes} bytes of jobs (maxQueuedBytes)`,
    ]);
  }

  // --- Peers -------------------------------------------------------------------------------

  /** A peer connected: the state the broker keeps for it, to pass back with each of its requests. */
  connect(peer: BrokerPeer): PeerState {
    const state = new PeerState(peer);
    this.peerStates.add(state);
    return state;
  }

  /** A peer is gone: the jobs it held go back to their queues, its waits end, its functions are given up. */
  disconnect(state: PeerState): void {
    if (!this.peerStates.delete(state)) return;
    this.grabsWaiting.delete(state);
    for (const job of state.heldNewestFirst()) this.requeue(job, 'worker-gone');
    for (const job of state.leave()) {
      job.removeClient(state);
      if (!job.clients && !job.background && !job.run) {
        this.remove(this.functionOf(job), job);
        this.notifyEnded(job, ABANDONED, undefined);
      }
    }
  }

  /** Every connected peer, oldest first. */
  peers(): IterableIterator<PeerState> {
    return this.peerStates.values();
  }

  // --- Reading -----------------------------------------------------------------------------

  handleOf(job: Job): string {
    return this.handles.of(job.id);
  }

  /** The estimated memory of every job here, as `maxQueuedBytes` counts it. */
  get queuedJobBytes(): number {
    return this.queuedBytes;
  }

  /** The job a handle names, or undefined (also for handles this server never made). */
  findByHandle(handle: string): Job | undefined {
    const id = this.handles.idOf(handle);
    return id === undefined ? undefined : this.jobs.get(id);
  }

  /** The newest job holding this unique id, whatever its function (GET_STATUS_UNIQUE, as gearmand). */
  findByUnique(unique: string): Job | undefined {
    let newest: Job | undefined;
    for (const fn of this.functionsByName.values()) {
      const job = fn.findByUnique(unique);
      if (job && (!newest || job.id > newest.id)) newest = job;
    }
    return newest;
  }

  /** Every function, in the order they were first seen. */
  functions(): IterableIterator<GearmanFunction> {
    return this.functionsByName.values();
  }

  findFunction(name: string): GearmanFunction | undefined {
    return this.functionsByName.get(name);
  }

  /** Every job, oldest first. */
  allJobs(): IterableIterator<Job> {
    return this.jobs.values();
  }

  /** Jobs here now: queued, delayed or running. */
  get jobCount(): number {
    return this.jobs.size;
  }

  /** Jobs created since the broker started (restored ones included); never decreases. */
  get jobsCreated(): number {
    return this.nextId - 1;
  }

  // --- Clients -----------------------------------------------------------------------------

  /**
   * A submit: a new job, or the existing one with the same unique id (coalescing), or ERROR
   * QUEUE_ERROR when `maxqueue` is reached. A foreground submitter then waits for the job's
   * results. The submitter gets JOB_CREATED, held until the lifecycle accepts the job if it asks to.
   */
  submit(submitter: PeerState, request: SubmitRequest): void {
    const fn = this.functionNamed(request.functionName);
    let job = fn.findCoalescing(request.unique, request.data);
    let accepted: Promise<boolean> | undefined;
    if (job) {
      if (this.accepting.size > 0) accepted = this.accepting.get(job);
      if (this.lifecycle?.joined) this.notifyJoined(job, request.background);
    } else {
      const refusal = this.refusal(fn, submitter, request);
      if (refusal) {
        submitter.peer.send(refusal);
        return;
      }
      const runAt = request.runAt ?? 0;
      job = this.admit(fn, request.unique, request.data, request.priority, request.background, request.reducer ?? '', runAt);
      if (this.submitters) {
        this.submitters.set(job, submitter);
        submitter.queuedJobs++;
      }
      if (this.lifecycle?.accepted) accepted = this.notifyAccepted(job, runAt);
    }
    if (!request.background) {
      job.addClient(submitter);
      submitter.waitFor(job);
    }
    const created = encodeByteStringResponse(PacketType.JOB_CREATED, [this.handleOf(job)]);
    if (accepted) {
      const reply = submitter.peer.reserve();
      void accepted.then((ok) => reply(ok ? created : NOT_ACCEPTED));
    } else {
      submitter.peer.send(created);
    }
  }

  /**
   * Puts back a background job a durable store kept (at start): queued, or delayed until its
   * time, as a new job with a new handle, without JOB_CREATED and without calling `accepted` (the
   * store has it). A job already here with the same function and unique id absorbs it; `maxqueue`
   * does not apply. Returns the handle. Throws RangeError for a unique id over MAX_UNIQUE_BYTES.
   */
  restore(stored: StoredJob): string {
    if (stored.unique.length > MAX_UNIQUE_BYTES) {
      throw new RangeError(`a unique id is at most ${MAX_UNIQUE_BYTES} bytes, got ${stored.unique.length}`);
    }
    const fn = this.functionNamed(stored.functionName);
    const job =
      fn.findCoalescing(stored.unique, stored.data) ??
      this.admit(fn, stored.unique, stored.data, stored.priority, true, '', stored.runAt ?? 0);
    return this.handleOf(job);
  }

  /** The ERROR for a new job that a limit refuses: its function's maxqueue, its connection's share, the server's memory. */
  private refusal(fn: GearmanFunction, submitter: PeerState, request: SubmitRequest): Buffer | undefined {
    if (fn.isFull(request.priority)) return QUEUE_FULL;
    if (this.submitters && submitter.queuedJobs >= this.maxPerConnection) return this.connectionFull;
    if (this.overMemory(request)) return this.memoryFull;
    return undefined;
  }

  /** Whether a new job would take the jobs here over `maxQueuedBytes`. */
  private overMemory(request: { readonly unique: string; readonly data: string }): boolean {
    return this.maxBytes > 0 && this.queuedBytes + request.unique.length + request.data.length + JOB_OVERHEAD_BYTES > this.maxBytes;
  }

  /**
   * A handle no job holds, made as job handles are (unguessable unless they are sequential), for
   * what the server runs that is not one job: a batch.
   */
  newHandle(): string {
    return this.handles.of(this.nextId++);
  }

  /**
   * Makes sure no new job gets `handle`, one a result kept from before a restart answers to: the
   * handle counter moves past it. Handles this server cannot read (another prefix, or an
   * unguessable one made under an earlier key) are ignored: no new handle can equal them.
   */
  reserveHandle(handle: string): void {
    const id = this.handles.idOf(handle);
    if (id !== undefined && id >= this.nextId) this.nextId = id + 1;
  }

  /**
   * A background job the server submits itself (a batch's items and gather job): admitted as a
   * client's background submit is (coalescing on the unique id, `maxqueue` and `maxQueuedBytes`,
   * the lifecycle's `accepted`), with no connection to answer. Its handle, and the lifecycle's
   * verdict when `accepted` asked to wait (a durable store's commit); undefined when a limit refuses it.
   */
  submitInternal(request: Omit<SubmitRequest, 'background' | 'reducer'>): { handle: string; accepted?: Promise<boolean> } | undefined {
    const fn = this.functionNamed(request.functionName);
    let job = fn.findCoalescing(request.unique, request.data);
    let accepted: Promise<boolean> | undefined;
    if (job) {
      if (this.accepting.size > 0) accepted = this.accepting.get(job);
      if (this.lifecycle?.joined) this.notifyJoined(job, true);
    } else {
      if (fn.isFull(request.priority) || this.overMemory(request)) return undefined;
      const runAt = request.runAt ?? 0;
      job = this.admit(fn, request.unique, request.data, request.priority, true, '', runAt);
      if (this.lifecycle?.accepted) accepted = this.notifyAccepted(job, runAt);
    }
    return { handle: this.handleOf(job), accepted };
  }

  // --- Workers -----------------------------------------------------------------------------

  canDo(worker: PeerState, functionName: string, timeoutMs: number): void {
    worker.addAbility(this.functionNamed(functionName), timeoutMs);
  }

  /** As gearmand: giving up a function drops every registration of it, and the jobs of it the worker holds go back to their queue. */
  cantDo(worker: PeerState, functionName: string): void {
    const fn = this.functionsByName.get(functionName);
    if (fn && worker.removeAbility(fn)) this.requeueHeld(worker, fn);
  }

  resetAbilities(worker: PeerState): void {
    for (const fn of [...worker.functions()]) {
      if (worker.removeAbility(fn)) this.requeueHeld(worker, fn);
    }
  }

  /** PRE_SLEEP: NOOP at once when a job waits, else the worker sleeps until one comes. */
  preSleep(worker: PeerState): void {
    if (this.pick(worker)) worker.peer.send(NOOP);
    else worker.sleep();
  }

  /**
   * GRAB_JOB*: the job with the highest priority across the worker's functions, then the oldest.
   * When none waits, NO_JOB is held until the end of this turn of the event loop (or the worker's
   * next packet, whichever comes first): a job submitted by a connection read later in the same
   * turn then goes to this worker, instead of a NO_JOB, PRE_SLEEP, NOOP, GRAB_JOB exchange.
   */
  grab(worker: PeerState, kind: GrabKind): void {
    worker.awake();
    if (this.assign(worker, kind)) return;
    const atEndOfTurn = this.options.atEndOfTurn;
    if (!atEndOfTurn) {
      worker.peer.send(NO_JOB);
      return;
    }
    this.grabsWaiting.set(worker, kind);
    if (!this.grabsScheduled) {
      this.grabsScheduled = true;
      atEndOfTurn(this.answerGrabsNow);
    }
  }

  /** The worker sent another packet: its waiting GRAB_JOB, if any, is answered first, so replies keep their order. */
  answerGrab(worker: PeerState): void {
    if (this.grabsWaiting.size === 0) return;
    const kind = this.grabsWaiting.get(worker);
    if (kind === undefined) return;
    this.grabsWaiting.delete(worker);
    if (!this.assign(worker, kind)) worker.peer.send(NO_JOB);
  }

  /** Whether the worker's GRAB_JOB waits for the end of the turn. */
  isGrabWaiting(worker: PeerState): boolean {
    return this.grabsWaiting.size > 0 && this.grabsWaiting.has(worker);
  }

  private answerGrabs(): void {
    this.grabsScheduled = false;
    for (const worker of this.grabsWaiting.keys()) this.answerGrab(worker);
  }

  /** Gives the worker its next job (JOB_ASSIGN*); false when none waits. */
  private assign(worker: PeerState, kind: GrabKind): boolean {
    const fn = this.pick(worker);
    const job = fn?.peek();
    if (!fn || !job) return false;
    fn.start(job);
    const handle = this.handleOf(job);
    const run = job.start(worker, handle);
    worker.hold(job, handle);
    const timeout = worker.timeoutFor(fn);
    if (timeout > 0) run.startTimer(Math.max(timeout, MIN_WORKER_TIMEOUT_MS), () => this.expire(job, run));
    const reducer = kind === PacketType.GRAB_JOB_ALL && this.reducers.size > 0 ? this.reducers.get(job) : undefined;
    if (kind === PacketType.GRAB_JOB) {
      worker.peer.send(encodeByteStringResponse(PacketType.JOB_ASSIGN, [handle, fn.name, job.data]));
    } else if (reducer !== undefined) {
      worker.peer.send(encodeByteStringResponse(PacketType.JOB_ASSIGN_ALL, [handle, fn.name, job.unique, reducer, job.data]));
    } else {
      worker.peer.send(encodeByteStringResponse(PacketType.JOB_ASSIGN_UNIQ, [handle, fn.name, job.unique, job.data]));
    }
    if (this.lifecycle?.started) this.notifyStarted(job, worker.peer);
    return true;
  }

  /**
   * WORK_DATA, WORK_WARNING, WORK_STATUS from a worker (`args` as they came, the handle first):
   * passed on to every waiting client; ERROR JOB_NOT_FOUND when the worker does not hold the job.
   */
  workUpdate(worker: PeerState, type: WorkUpdateType, handle: string, args: readonly Buffer[]): void {
    const job = this.heldBy(worker, handle);
    if (!job) {
      worker.peer.send(type === PacketType.WORK_STATUS ? NOT_FOUND_RESULT : NOT_FOUND_DATA);
      return;
    }
    if (type === PacketType.WORK_STATUS) {
      const [, numerator, denominator] = args;
      const run = job.run!;
      run.setProgress(storedNumerator(numerator.toString('latin1')), storedDenominator(denominator.toString('latin1')));
    }
    if (this.lifecycle?.progressed) this.notifyProgressed(job, type, args);
    if (job.clients) this.sendToClients(job, encodeByteStringResponse(type, args));
  }

  /**
   * WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION from a worker: passed on (WORK_FAIL in place of
   * WORK_EXCEPTION for clients without the `exceptions` option), then the job is gone; ERROR
   * JOB_NOT_FOUND when the worker does not hold the job.
   */
  workEnd(worker: PeerState, type: WorkEndType, handle: string, args: readonly Buffer[]): void {
    const job = this.heldBy(worker, handle);
    if (!job) {
      worker.peer.send(type === PacketType.WORK_EXCEPTION ? NOT_FOUND_EXCEPTION : NOT_FOUND_RESULT);
      return;
    }
    const clients = job.clients;
    if (clients) {
      const packet = encodeByteStringResponse(type, args);
      if (type === PacketType.WORK_EXCEPTION) {
        let fail: Buffer | undefined;
        for (const client of clients) {
          if (client.peer.exceptions) client.peer.send(packet);
          // The handle alone: gearmand leaves the NUL that ended it in the WORK_EXCEPTION, which
          // makes Perl's Gearman::Client die instead of failing the task.
          else client.peer.send((fail ??= encodeByteStringResponse(PacketType.WORK_FAIL, [args[0]])));
        }
      } else {
        for (const client of clients) client.peer.send(packet);
      }
    }
    const fn = this.functionOf(job);
    const run = this.stopRunning(fn, job);
    this.remove(fn, job);
    if (this.lifecycle?.ended && !job.ignored) {
      const outcome: JobOutcome =
        type === PacketType.WORK_FAIL ? FAILED : { kind: type === PacketType.WORK_COMPLETE ? 'complete' : 'exception', data: args[1] };
      this.notifyEnded(job, outcome, run);
    }
  }

  // --- Admin -------------------------------------------------------------------------------

  /** `create function`: the function exists from now on (it does already if seen before). */
  createFunction(name: string): GearmanFunction {
    return this.functionNamed(name);
  }

  /** `maxqueue`: one limit per priority, 0 for none; a function that does not exist is left alone (as gearmand). */
  setMaxQueue(functionName: string, limits: readonly [number, number, number]): void {
    this.functionsByName.get(functionName)?.setMaxQueue(limits);
  }

  /**
   * `cancel job`: its clients get WORK_FAIL; a queued job goes at once, a running one's result is
   * dropped when its worker sends it. False when no such job exists or it is cancelled already.
   */
  cancel(handle: string): boolean {
    const job = this.findByHandle(handle);
    if (!job || job.ignored) return false;
    this.cancelJob(job);
    return true;
  }

  /**
   * `pause function` (an extension: gearmand has none): the function's jobs stay queued and no
   * worker is given one until `resumeFunction`; submits are still accepted. A function not seen yet
   * is created, so that it can be paused before its first job.
   */
  pauseFunction(name: string): void {
    this.functionNamed(name).pause();
  }

  /** `resume function`: workers get the function's jobs again (sleeping ones are woken). False when no such function exists. */
  resumeFunction(name: string): boolean {
    const fn = this.functionsByName.get(name);
    if (!fn) return false;
    if (fn.paused) {
      fn.resume();
      if (fn.peek()) fn.wakeSleepers();
    }
    return true;
  }

  /** `drop function`: refused (false) while workers can do it or jobs of it run; its waiting jobs are cancelled. */
  dropFunction(fn: GearmanFunction): boolean {
    if (fn.registrations > 0 || fn.running > 0) return false;
    for (const job of [...fn.queuedJobs()]) this.cancelJob(job);
    for (const job of this.jobs.values()) if (job.functionName === fn.name && job.delayed) this.cancelJob(job);
    this.functionsByName.delete(fn.name);
    return true;
  }

  /** Stops every timer and forgets waiting GRAB_JOBs. Queued jobs are dropped without `ended`: a durable store keeps them for restore. */
  close(): void {
    this.delayed.close();
    this.grabsWaiting.clear();
    for (const job of this.jobs.values()) job.run?.stopTimer();
  }

  // --- Inside ------------------------------------------------------------------------------

  private functionNamed(name: string): GearmanFunction {
    let fn = this.functionsByName.get(name);
    if (!fn) {
      fn = new GearmanFunction(name, this.options.maxQueuedJobsPerFunction ?? 0);
      this.functionsByName.set(name, fn);
    }
    return fn;
  }

  /** A job's function: it exists as long as the job does (dropFunction removes the jobs first). */
  private functionOf(job: Job): GearmanFunction {
    const fn = this.functionsByName.get(job.functionName);
    if (!fn) throw new Error(`job ${this.handleOf(job)} outlived its function ${JSON.stringify(job.functionName)}`);
    return fn;
  }

  /** A new job: counted, indexed, then queued or delayed until `runAt`. */
  private admit(
    fn: GearmanFunction,
    unique: string,
    data: string,
    priority: Priority,
    background: boolean,
    reducer: string,
    runAt: number,
  ): Job {
    // The function's own name string, so every job of it shares one copy.
    const job = new Job(this.nextId++, fn.name, unique, data, priority, background);
    if (reducer !== '') this.reducers.set(job, reducer);
    this.jobs.add(job);
    this.queuedBytes += job.body.length + JOB_OVERHEAD_BYTES;
    fn.add(job);
    if (runAt > 0 && runAt > Date.now()) this.delayed.add(job, runAt);
    else this.enqueue(fn, job);
    return job;
  }

  /** Puts a counted job at the tail of its queue and wakes the function's sleeping workers (unless it is paused). */
  private enqueue(fn: GearmanFunction, job: Job): void {
    fn.enqueue(job);
    if (!fn.paused) fn.wakeSleepers();
  }

  /** The function whose next job a worker would get: highest priority across its functions, then the oldest. */
  private pick(worker: PeerState): GearmanFunction | undefined {
    let best: Job | undefined;
    let bestFunction: GearmanFunction | undefined;
    for (const fn of worker.functions()) {
      if (fn.paused) continue;
      const job = fn.peek();
      if (job && (!best || job.priority < best.priority || (job.priority === best.priority && job.id < best.id))) {
        best = job;
        bestFunction = fn;
      }
    }
    return bestFunction;
  }

  /** The job a worker holds under this handle, for its WORK_* packets. */
  private heldBy(worker: PeerState, handle: string): Job | undefined {
    return worker.heldJob(handle);
  }

  private expire(job: Job, run: RunState): void {
    if (job.run !== run) return;
    this.options.warn(`worker timeout on job ${this.handleOf(job)}: requeued`);
    this.requeue(job, 'timeout');
  }

  private requeueHeld(worker: PeerState, fn: GearmanFunction): void {
    for (const job of worker.heldNewestFirst()) {
      if (job.functionName === fn.name) this.requeue(job, 'cant-do');
    }
  }

  /**
   * The worker lost a job (gone, gave up the function, timed out): back to the tail of its queue,
   * progress reset, one more retry; past the retry limit its clients get WORK_FAIL. A foreground
   * job nobody waits for any more is dropped instead, and so is one cancelled while it ran.
   */
  private requeue(job: Job, reason: RequeueReason): void {
    const fn = this.functionOf(job);
    const run = this.stopRunning(fn, job);
    const retries = job.addRetry();
    const limit = this.options.jobRetries;
    if (limit !== 0 && retries >= limit) {
      this.options.warn(`job ${this.handleOf(job)} dropped after ${retries} attempts`);
      this.sendToClients(job, encodeByteStringResponse(PacketType.WORK_FAIL, [this.handleOf(job)]));
      this.remove(fn, job);
      if (!job.ignored) this.notifyEnded(job, RETRIES_EXHAUSTED, run);
      return;
    }
    if (job.ignored || (!job.background && !job.clients)) {
      this.remove(fn, job);
      if (!job.ignored) this.notifyEnded(job, ABANDONED, run);
      return;
    }
    fn.requeue(job);
    fn.wakeSleepers();
    if (this.lifecycle?.requeued) this.notifyRequeued(job, reason);
  }

  /** Ends a job's run: its timer, its worker's hold on it, the function's running count. */
  private stopRunning(fn: GearmanFunction, job: Job): RunState | undefined {
    const run = job.stop();
    if (!run) return undefined;
    run.stopTimer();
    run.worker.release(run.handle);
    fn.stop();
    return run;
  }

  private cancelJob(job: Job): void {
    this.sendToClients(job, encodeByteStringResponse(PacketType.WORK_FAIL, [this.handleOf(job)]));
    this.discard(job);
  }

  /** A cancelled job: its clients stop waiting; a waiting job goes at once, a running one is marked so its result goes nowhere. */
  private discard(job: Job): void {
    this.detachClients(job);
    const run = job.run;
    if (run) job.ignore();
    else this.remove(this.functionOf(job), job);
    this.notifyEnded(job, CANCELLED, run);
  }

  private sendToClients(job: Job, packet: Buffer): void {
    const clients = job.clients;
    if (clients) for (const client of clients) client.peer.send(packet);
  }

  private detachClients(job: Job): void {
    const clients = job.takeClients();
    if (clients) for (const client of clients) client.stopWaiting(job);
  }

  /** Forgets a job that is not running: out of its queue or the delay, its indexes, its counters and the job table. */
  private remove(fn: GearmanFunction, job: Job): void {
    fn.remove(job);
    this.delayed.remove(job);
    this.detachClients(job);
    if (this.reducers.size > 0) this.reducers.delete(job);
    if (this.submitters) {
      const submitter = this.submitters.get(job);
      if (submitter) {
        submitter.queuedJobs--;
        this.submitters.delete(job);
      }
    }
    this.jobs.delete(job);
    this.queuedBytes -= job.body.length + JOB_OVERHEAD_BYTES;
  }

  // --- Lifecycle ---------------------------------------------------------------------------

  private view(job: Job): JobView {
    return {
      id: job.id,
      handle: this.handleOf(job),
      functionName: job.functionName,
      unique: job.unique,
      data: job.data,
      priority: job.priority,
      background: job.background,
      retries: job.retries,
      createdAt: job.createdAt,
    };
  }

  /** Calls `accepted`; when it returns a promise, JOB_CREATED waits for it (see submit), and a refusal cancels the job. */
  private notifyAccepted(job: Job, runAt: number): Promise<boolean> | undefined {
    let result: PromiseLike<void> | void;
    try {
      result = this.lifecycle!.accepted!(this.view(job), runAt);
    } catch (error) {
      result = Promise.reject(error);
    }
    if (!result) return undefined;
    const settled = Promise.resolve(result).then(
      () => {
        this.accepting.delete(job);
        return true;
      },
      (error: unknown) => {
        this.accepting.delete(job);
        this.options.warn(`job ${this.handleOf(job)} was not accepted: ${String(error)}`);
        // Every client got (or will get) ERROR in place of JOB_CREATED: none waits for a result.
        if (this.jobs.get(job.id) === job && !job.ignored) this.discard(job);
        return false;
      },
    );
    this.accepting.set(job, settled);
    return settled;
  }

  private notifyJoined(job: Job, background: boolean): void {
    try {
      this.lifecycle!.joined!(this.view(job), background);
    } catch (error) {
      this.hookFailed('joined', error);
    }
  }

  private notifyStarted(job: Job, worker: BrokerPeer): void {
    try {
      this.lifecycle!.started!(this.view(job), worker);
    } catch (error) {
      this.hookFailed('started', error);
    }
  }

  private notifyProgressed(job: Job, type: WorkUpdateType, args: readonly Buffer[]): void {
    const run = job.run!;
    const update: WorkUpdate =
      type === PacketType.WORK_STATUS
        ? { kind: 'status', numerator: run.numerator, denominator: run.denominator }
        : { kind: type === PacketType.WORK_DATA ? 'data' : 'warning', data: args[1] };
    try {
      this.lifecycle!.progressed!(this.view(job), update);
    } catch (error) {
      this.hookFailed('progressed', error);
    }
  }

  private notifyRequeued(job: Job, reason: RequeueReason): void {
    try {
      this.lifecycle!.requeued!(this.view(job), reason);
    } catch (error) {
      this.hookFailed('requeued', error);
    }
  }

  private notifyEnded(job: Job, outcome: JobOutcome, run: RunState | undefined): void {
    if (!this.lifecycle?.ended) return;
    try {
      this.lifecycle.ended(this.view(job), {
        outcome,
        numerator: run?.numerator ?? 0,
        denominator: run?.denominator ?? 0,
        endedAt: Date.now(),
      });
    } catch (error) {
      this.hookFailed('ended', error);
    }
  }

  private hookFailed(hook: string, error: unknown): void {
    this.options.warn(`job lifecycle hook ${hook} threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
}
