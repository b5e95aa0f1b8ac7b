import { encodeByteStringResponse } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import type { BrokerPeer } from './broker-peer.js';
import type { GearmanFunction, Sleeper } from './gearman-function.js';
import type { Job, JobPeer } from './job.js';

const NOOP = encodeByteStringResponse(PacketType.NOOP, []);

/**
 * What the broker knows of one connected peer: the functions it registered, the jobs it holds as
 * a worker, the jobs whose results it waits for as a client, and whether it sleeps. The broker
 * creates one per peer (JobBroker.connect) and alone changes it; the connection only hands it back.
 */
export class PeerState implements JobPeer, Sleeper {
  /** Functions this peer can do, with their CAN_DO_TIMEOUT in ms (0: none). */
  private readonly abilities = new Map<GearmanFunction, number>();
  /** Every CAN_DO in force, oldest first, repeats included (the `workers` listing shows them all). */
  private registered: GearmanFunction[] = [];
  /** Jobs assigned to this peer, by the handle it was given, oldest first. */
  private readonly held = new Map<string, Job>();
  /** Foreground jobs whose results this peer waits for. */
  private readonly waitingFor = new Set<Job>();
  private sleeping = false;
  private noopSent = false;
  /** Jobs this peer submitted that are still here (counted only under maxQueuedJobsPerConnection). */
  queuedJobs = 0;

  constructor(readonly peer: BrokerPeer) {}

  /** CAN_DO / CAN_DO_TIMEOUT: a repeated one counts again and sets the timeout anew. */
  addAbility(fn: GearmanFunction, timeoutMs: number): void {
    this.abilities.set(fn, timeoutMs);
    this.registered.push(fn);
    fn.register();
    // A worker asleep already is woken by jobs of its new function too.
    if (this.sleeping && !this.noopSent) fn.addSleeper(this);
  }

  /** Drops every registration of the function; false when the peer had none. */
  removeAbility(fn: GearmanFunction): boolean {
    if (!this.abilities.delete(fn)) return false;
    const kept = this.registered.filter((registered) => registered !== fn);
    fn.unregister(this.registered.length - kept.length);
    this.registered = kept;
    fn.removeSleeper(this);
    return true;
  }

  /** The functions this peer can do, each once. */
  functions(): IterableIterator<GearmanFunction> {
    return this.abilities.keys();
  }

  /** CAN_DO_TIMEOUT of a function in ms; 0 for none. */
  timeoutFor(fn: GearmanFunction): number {
    return this.abilities.get(fn) ?? 0;
  }

  /** Registrations in force, oldest first, repeats included. */
  registrations(): readonly GearmanFunction[] {
    return this.registered;
  }

  /** PRE_SLEEP with nothing to do: jobs of any of its functions will wake it. */
  sleep(): void {
    this.sleeping = true;
    for (const fn of this.abilities.keys()) fn.addSleeper(this);
  }

  /** It asked for a job: awake, and owed a NOOP again the next time it sleeps. */
  awake(): void {
    this.sleeping = false;
    this.noopSent = false;
  }

  wake(): void {
    if (!this.sleeping || this.noopSent) return;
    this.noopSent = true;
    this.peer.send(NOOP);
  }

  hold(job: Job, handle: string): void {
    this.held.set(handle, job);
  }

  release(handle: string): void {
    this.held.delete(handle);
  }

  /** The job this peer holds under that handle (WORK_* from a worker name it so). */
  heldJob(handle: string): Job | undefined {
    return this.held.get(handle);
  }

  /** Whether it waits for anything: jobs it runs, results it waits for, functions it serves. */
  get isBusy(): boolean {
    return this.held.size > 0 || this.waitingFor.size > 0 || this.abilities.size > 0;
  }

  /** The jobs it holds, newest first (the order gearmand gives a lost worker's jobs back in). */
  heldNewestFirst(): Job[] {
    return [...this.held.values()].reverse();
  }

  waitFor(job: Job): void {
    this.waitingFor.add(job);
  }

  stopWaiting(job: Job): void {
    this.waitingFor.delete(job);
  }

  /** The peer is gone: gives up every function and returns the jobs it waited for. */
  leave(): Job[] {
    for (const fn of this.registered) fn.unregister(1);
    for (const fn of this.abilities.keys()) fn.removeSleeper(this);
    this.registered = [];
    this.abilities.clear();
    const waits = [...this.waitingFor];
    this.waitingFor.clear();
    return waits;
  }
}
