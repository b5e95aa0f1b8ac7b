import { encodeResponse } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import { DelayedJobs } from './delayed-jobs.js';
import { GearmanFunction } from './gearman-function.js';
import { Job, Priority, RunState } from './job.js';
import { JobTable } from './job-table.js';
import type { ServerConnection } from './server-connection.js';
import { encodeByteStringResponse, encodeEmptyResponse } from './server-packets.js';

const NOOP = encodeEmptyResponse(PacketType.NOOP);
const NO_JOB = encodeEmptyResponse(PacketType.NO_JOB);

/** gearmand arms CAN_DO_TIMEOUT timers with at least a second. */
const MIN_WORKER_TIMEOUT_MS = 1000;

export interface BrokerOptions {
  /** Handles are `<prefix>:<counter>`. */
  readonly handlePrefix: string;
  /** A job whose worker vanishes this many times is failed; 0 = never. */
  readonly jobRetries: number;
  readonly warn: (message: string) => void;
}

export type SubmitResult = { readonly job: Job } | { readonly error: 'QUEUE_ERROR' };

export type GrabKind = PacketType.GRAB_JOB | PacketType.GRAB_JOB_UNIQ | PacketType.GRAB_JOB_ALL;

/**
 * The scheduler: functions, jobs, which worker holds what, and who waits for which result.
 * Every per-job step is O(1) (maps by handle and by unique id, intrusive queues); picking a job
 * for a worker looks once at each function that worker can do.
 */
export class JobBroker {
  readonly functions = new Map<string, GearmanFunction>();
  /** Every job by the counter in its handle. */
  readonly jobs = new JobTable();
  private nextId = 1;
  private readonly handleStart: string;
  private readonly delayed = new DelayedJobs((job) => this.enqueue(job));
  /** Reducer names of the few jobs that have one (reduce jobs), kept beside the job records. */
  private readonly reducers = new Map<Job, string>();

  constructor(private readonly options: BrokerOptions) {
    this.handleStart = `${options.handlePrefix}:`;
  }

  handleOf(job: Job): string {
    return this.handleStart + job.id;
  }

  /** The job a handle names, or undefined (also for handles this server never made). */
  findByHandle(handle: string): Job | undefined {
    if (!handle.startsWith(this.handleStart)) return undefined;
    const digits = handle.slice(this.handleStart.length);
    if (!/^[1-9]\d{0,15}$/.test(digits)) return undefined;
    return this.jobs.get(Number(digits));
  }

  /** The newest job holding this unique id, whatever its function (GET_STATUS_UNIQUE, as gearmand). */
  findByUnique(unique: string): Job | undefined {
    let newest: Job | undefined;
    for (const fn of this.functions.values()) {
      const job = fn.byUnique.get(unique);
      if (job && (!newest || job.id > newest.id)) newest = job;
    }
    return newest;
  }

  functionNamed(name: string): GearmanFunction {
    let fn = this.functions.get(name);
    if (!fn) {
      fn = new GearmanFunction(name);
      this.functions.set(name, fn);
    }
    return fn;
  }

  submit(
    client: ServerConnection | undefined,
    fnName: string,
    unique: string,
    data: string,
    priority: Priority,
    reducer = '',
    /** Epoch time in ms to run at; 0 (or past) = at once. */
    runAt = 0,
  ): SubmitResult {
    const fn = this.functionNamed(fnName);
    let job = fn.findCoalescing(unique, data);
    if (!job) {
      if (fn.isFull(priority)) return { error: 'QUEUE_ERROR' };
      job = new Job(this.nextId++, fn, unique, data, priority, client === undefined);
      if (reducer !== '') this.reducers.set(job, reducer);
      this.jobs.add(job);
      fn.total++;
      fn.waiting[priority]++;
      fn.index(job);
      if (runAt > Date.now()) {
        this.delayed.add(job, runAt);
      } else {
        this.enqueue(job);
      }
    }
    if (client) {
      if (job.clients) job.clients.push(client);
      else job.clients = [client];
      client.waiting.add(job);
    }
    return { job };
  }

  /** Puts a counted job at the tail of its queue and wakes the function's sleeping workers. */
  private enqueue(job: Job): void {
    job.fn.push(job);
    this.wake(job.fn);
  }

  private wake(fn: GearmanFunction): void {
    if (fn.sleepers.size === 0) return;
    for (const worker of fn.sleepers) {
      if (worker.sleeping && !worker.noopSent) {
        worker.noopSent = true;
        worker.send(NOOP);
      }
    }
    fn.sleepers.clear();
  }

  canDo(worker: ServerConnection, fnName: string, timeoutMs: number): void {
    const fn = this.functionNamed(fnName);
    worker.abilities.set(fn, timeoutMs);
    worker.registrations.push(fn);
    fn.registrations++;
    // A worker asleep already is woken by jobs of its new function too.
    if (worker.sleeping && !worker.noopSent) fn.sleepers.add(worker);
  }

  cantDo(worker: ServerConnection, fnName: string): void {
    const fn = this.functions.get(fnName);
    if (fn && worker.abilities.has(fn)) this.removeAbility(worker, fn);
  }

  resetAbilities(worker: ServerConnection): void {
    for (const fn of [...worker.abilities.keys()]) this.removeAbility(worker, fn);
  }

  /**
   * As gearmand: giving up a function drops every registration of it and the jobs of it the
   * worker holds (they are requeued).
   */
  private removeAbility(worker: ServerConnection, fn: GearmanFunction): void {
    worker.abilities.delete(fn);
    const kept = worker.registrations.filter((registered) => registered !== fn);
    fn.registrations -= worker.registrations.length - kept.length;
    worker.registrations = kept;
    fn.sleepers.delete(worker);
    for (const job of this.heldNewestFirst(worker)) {
      if (job.fn === fn) this.requeue(job);
    }
  }

  preSleep(worker: ServerConnection): void {
    if (this.pick(worker)) {
      worker.send(NOOP);
      return;
    }
    worker.sleeping = true;
    for (const fn of worker.abilities.keys()) fn.sleepers.add(worker);
  }

  grab(worker: ServerConnection, kind: GrabKind): void {
    worker.sleeping = false;
    worker.noopSent = false;
    const job = this.pick(worker);
    if (!job) {
      worker.send(NO_JOB);
      return;
    }
    const fn = job.fn;
    fn.unlink(job);
    fn.waiting[job.priority]--;
    fn.running++;
    const run = new RunState(worker);
    job.run = run;
    worker.held.set(job.id, job);
    const timeout = worker.abilities.get(fn) ?? 0;
    if (timeout > 0) {
      run.timer = setTimeout(() => this.expire(job, run), Math.max(timeout, MIN_WORKER_TIMEOUT_MS));
    }
    const handle = this.handleOf(job);
    if (kind === PacketType.GRAB_JOB) {
      worker.send(encodeByteStringResponse(PacketType.JOB_ASSIGN, [handle, fn.name, job.data]));
    } else if (kind === PacketType.GRAB_JOB_ALL && this.reducerOf(job) !== '') {
      worker.send(encodeByteStringResponse(PacketType.JOB_ASSIGN_ALL, [handle, fn.name, job.unique, this.reducerOf(job), job.data]));
    } else {
      worker.send(encodeByteStringResponse(PacketType.JOB_ASSIGN_UNIQ, [handle, fn.name, job.unique, job.data]));
    }
  }

  private reducerOf(job: Job): string {
    return this.reducers.get(job) ?? '';
  }

  /** The job a worker would get: highest priority across its functions, then the oldest. */
  private pick(worker: ServerConnection): Job | undefined {
    let best: Job | undefined;
    for (const fn of worker.abilities.keys()) {
      const job = fn.peek();
      if (job && (!best || job.priority < best.priority || (job.priority === best.priority && job.id < best.id))) best = job;
    }
    return best;
  }

  private expire(job: Job, run: RunState): void {
    if (job.run !== run) return;
    run.timer = undefined;
    this.options.warn(`worker timeout on job ${this.handleOf(job)}: requeued`);
    this.requeue(job);
  }

  /**
   * The worker lost a job (gone, gave up the function, timed out): back to the tail of its queue,
   * progress reset, one more retry; past the retry limit its clients get WORK_FAIL. A foreground
   * job nobody waits for any more is dropped instead.
   */
  requeue(job: Job): void {
    this.stopRunning(job);
    const retries = job.addRetry();
    const limit = this.options.jobRetries;
    if (limit !== 0 && retries >= limit) {
      this.options.warn(`job ${this.handleOf(job)} dropped after ${retries} attempts`);
      this.sendToClients(job, encodeByteStringResponse(PacketType.WORK_FAIL, [this.handleOf(job)]));
      this.remove(job);
      return;
    }
    if (job.ignored || (!job.background && !job.clients)) {
      this.remove(job);
      return;
    }
    job.fn.waiting[job.priority]++;
    this.enqueue(job);
  }

  private stopRunning(job: Job): void {
    const run = job.run;
    if (!run) return;
    if (run.timer) clearTimeout(run.timer);
    run.worker.held.delete(job.id);
    job.run = undefined;
    job.fn.running--;
  }

  /** The job a worker holds under this handle, for its WORK_* packets. */
  heldBy(worker: ServerConnection, handle: string): Job | undefined {
    const job = this.findByHandle(handle);
    return job && job.run?.worker === worker ? job : undefined;
  }

  /** WORK_DATA, WORK_WARNING, WORK_STATUS: passed on to every waiting client. */
  relay(job: Job, type: PacketType, args: Buffer[]): void {
    if (type === PacketType.WORK_STATUS) {
      const run = job.run!;
      // As gearmand stores them: atoi into 32 unsigned bits, the denominator read from its first 10 bytes.
      run.numerator = atoiUint32(args[1].toString('latin1'));
      run.denominator = atoiUint32(args[2].toString('latin1', 0, Math.min(args[2].length, MAX_DENOMINATOR_DIGITS)));
    }
    if (job.clients) this.sendToClients(job, encodeResponse(type, ...args));
  }

  /** WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION: passed on, then the job is gone. */
  finish(job: Job, type: PacketType, args: Buffer[]): void {
    const clients = job.clients;
    if (clients) {
      const packet = encodeResponse(type, ...args);
      if (type === PacketType.WORK_EXCEPTION) {
        let fail: Buffer | undefined;
        for (const client of clients) {
          if (client.exceptions) client.send(packet);
          // The handle alone: gearmand leaves the NUL that ended it in the WORK_EXCEPTION, which
          // makes Perl's Gearman::Client die instead of failing the task.
          else client.send((fail ??= encodeResponse(PacketType.WORK_FAIL, args[0])));
        }
      } else {
        for (const client of clients) client.send(packet);
      }
    }
    this.stopRunning(job);
    this.remove(job);
  }

  /** Admin `cancel job`: its clients get WORK_FAIL; a queued job goes at once, a running one's result is dropped. */
  cancel(job: Job): void {
    this.sendToClients(job, encodeByteStringResponse(PacketType.WORK_FAIL, [this.handleOf(job)]));
    this.detachClients(job);
    if (job.run) job.ignored = true;
    else this.remove(job);
  }

  /** Admin `drop function`: refused while workers can do it or jobs of it run. */
  dropFunction(fn: GearmanFunction): boolean {
    if (fn.registrations > 0 || fn.running > 0) return false;
    for (const job of [...fn.queuedJobs()]) this.cancel(job);
    for (const job of this.jobs.values()) if (job.fn === fn && job.delayed) this.cancel(job);
    this.functions.delete(fn.name);
    return true;
  }

  /** A connection closed: its held jobs are requeued, its waits dropped, its abilities removed. */
  disconnected(con: ServerConnection): void {
    for (const job of this.heldNewestFirst(con)) this.requeue(job);
    for (const fn of con.registrations) fn.registrations--;
    for (const fn of con.abilities.keys()) fn.sleepers.delete(con);
    con.registrations = [];
    con.abilities.clear();
    for (const job of con.waiting) {
      const rest = job.clients!.filter((client) => client !== con);
      job.clients = rest.length > 0 ? rest : undefined;
      if (!job.clients && !job.background && !job.run) this.remove(job);
    }
    con.waiting.clear();
  }

  /** gearmand gives a lost worker's jobs back newest first, so they queue up in that order. */
  private heldNewestFirst(worker: ServerConnection): Job[] {
    return [...worker.held.values()].reverse();
  }

  close(): void {
    this.delayed.close();
    for (const job of this.jobs.values()) if (job.run?.timer) clearTimeout(job.run.timer);
  }

  private sendToClients(job: Job, packet: Buffer): void {
    if (job.clients) for (const client of job.clients) client.send(packet);
  }

  private detachClients(job: Job): void {
    if (!job.clients) return;
    for (const client of job.clients) client.waiting.delete(job);
    job.clients = undefined;
  }

  /** Forgets a job that is not running: out of its queue, its indexes and its counters. */
  private remove(job: Job): void {
    const fn = job.fn;
    if (job.queued) {
      fn.unlink(job);
      fn.waiting[job.priority]--;
    } else if (job.delayed) {
      this.delayed.remove(job);
      fn.waiting[job.priority]--;
    }
    this.detachClients(job);
    fn.unindex(job);
    this.reducers.delete(job);
    fn.total--;
    this.jobs.delete(job);
  }
}

/** gearmand copies a WORK_STATUS denominator into an 11-byte buffer before reading it. */
const MAX_DENOMINATOR_DIGITS = 10;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** `(uint32_t)atoi(text)` on a 64-bit Linux: strtol saturates at 64 bits, then the low 32 bits remain. */
function atoiUint32(text: string): number {
  const match = /^\s*([+-]?\d+)/.exec(text);
  if (!match) return 0;
  let value = BigInt(match[1]);
  if (value < INT64_MIN) value = INT64_MIN;
  else if (value > INT64_MAX) value = INT64_MAX;
  return Number(BigInt.asUintN(32, value));
}

/** C's atoi: the leading decimal digits (with an optional sign), 0 when there are none. */
export function parseLeadingInteger(text: string): number {
  const match = /^\s*([+-]?\d+)/.exec(text);
  return match ? Number(match[1]) : 0;
}
