import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { inspectJobServer, type JobServerSnapshot } from '../../client/job-server-snapshot.js';
import { loadOptionalPeer } from '../../common/optional-peer.js';
import type { AppWorkerState } from '../../dashboard/dashboard-state.js';
import type { ServerAddress } from '../../connection/server-address.js';
import { workerState } from './app-workers.js';
import { GEARMAN_SERVERS } from './gearman.constants.js';
import { GearmanStrategyFactory } from './gearman-strategy.factory.js';

/** Thresholds and scope of one health check; every threshold is off unless given. */
export interface GearmanHealthCheckOptions {
  /** Per job server: connect, ECHO and admin replies must come within this; default 2000 ms. */
  timeoutMs?: number;
  /** The job servers to check; default the module's (the embedded one included). */
  servers?: ServerAddress[];
  /** `'any'` (default): down only when no job server answers. `'all'`: down when any does not. */
  reachable?: 'any' | 'all';
  /**
   * Functions that must have a worker on some reachable job server: their names, or `'queued'` for
   * every function with queued jobs (jobs nobody will run).
   */
  requireWorkers?: readonly string[] | 'queued';
  /** At most this many queued jobs per function (a number for all, or by function name), summed over the job servers. */
  maxQueued?: number | Readonly<Record<string, number>>;
  /**
   * How a crossed threshold reports: `'down'` (default), or `'degraded'` (Terminus 12 and later:
   * the check answers 200 with status `degraded`; Terminus 11 has no such status and reports down).
   * An unreachable job server or a stopped worker of this app is always down.
   */
  thresholdStatus?: 'down' | 'degraded';
}

/** One job server in the check's details. */
export interface GearmanServerHealth {
  readonly reachable: boolean;
  readonly error?: string;
  readonly rttMs?: number;
  readonly version?: string;
  /** By function name: queued and running jobs, workers. */
  readonly functions?: Readonly<Record<string, { queued: number; running: number; workers: number }>>;
}

/** One `ServerGearman` of this app in the check's details. */
export type GearmanWorkerHealth = AppWorkerState;

/** What the check reports under its key, beside `status`. */
export interface GearmanHealthDetails {
  readonly servers: Readonly<Record<string, GearmanServerHealth>>;
  readonly workers: readonly GearmanWorkerHealth[];
  /** Why it is not up, one sentence each. */
  readonly problems?: readonly string[];
}

/** A Terminus `HealthIndicatorResult`, typed here so that this package's types need no Terminus. */
export type GearmanHealthResult<Key extends string, Status extends string = 'up' | 'down'> = Record<
  Key,
  { status: Status } & GearmanHealthDetails
>;

interface HealthSession {
  up(data: object): unknown;
  down(data: object): unknown;
  degraded?(data: object): unknown;
}

interface TerminusModule {
  HealthIndicatorService: new () => { check(key: string): HealthSession };
}

/**
 * A `@nestjs/terminus` health indicator (Terminus 11's `HealthIndicatorService` style) for Gearman:
 * each job server (reachable, ECHO round trip, and where it answers `status`, queued / running /
 * workers per function), this app's workers (listening, connected, jobs in flight), and optional
 * thresholds. Works against gearmand and this package's job server alike. Provided by
 * `GearmanModule`; Terminus is loaded on the first check (an optional peer dependency).
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() {
 *   return this.health.check([() => this.gearman.isHealthy('gearman', { requireWorkers: ['resize'] })]);
 * }
 * ```
 */
@Injectable()
export class GearmanHealthIndicator {
  private terminus: Promise<TerminusModule> | undefined;

  constructor(
    @Inject(GEARMAN_SERVERS) private readonly servers: ServerAddress[],
    private readonly strategies: GearmanStrategyFactory,
    private readonly moduleRef: ModuleRef,
  ) {}

  isHealthy<const Key extends string>(
    key: Key,
    options: GearmanHealthCheckOptions & { thresholdStatus: 'degraded' },
  ): Promise<GearmanHealthResult<Key, 'up' | 'down' | 'degraded'>>;
  isHealthy<const Key extends string>(key: Key, options?: GearmanHealthCheckOptions): Promise<GearmanHealthResult<Key>>;
  async isHealthy<const Key extends string>(
    key: Key,
    options: GearmanHealthCheckOptions = {},
  ): Promise<GearmanHealthResult<Key, 'up' | 'down' | 'degraded'>> {
    const terminus = await this.loadTerminus();
    const servers = options.servers ?? this.servers;
    const snapshots = await Promise.all(servers.map((server) => inspectJobServer(server, { timeoutMs: options.timeoutMs ?? 2000 })));
    const workers = this.strategies.strategies.map(workerState);
    const { details, severity } = assessGearmanHealth(snapshots, workers, options);
    const session = this.healthIndicatorService(terminus).check(key);
    if (severity === 'up') return session.up(details) as GearmanHealthResult<Key>;
    if (severity === 'degraded' && session.degraded) return session.degraded(details) as GearmanHealthResult<Key, 'degraded'>;
    return session.down(details) as GearmanHealthResult<Key>;
  }

  private loadTerminus(): Promise<TerminusModule> {
    this.terminus ??= loadOptionalPeer<TerminusModule>('@nestjs/terminus', '^11.0.0 || ^12.0.0', 'GearmanHealthIndicator').catch(
      (error: unknown) => {
        this.terminus = undefined;
        throw error;
      },
    );
    return this.terminus;
  }

  /** The app's own `HealthIndicatorService` when `TerminusModule` is imported, else one of our own (it holds no state we need). */
  private healthIndicatorService(terminus: TerminusModule): { check(key: string): HealthSession } {
    try {
      return this.moduleRef.get(terminus.HealthIndicatorService, { strict: false });
    } catch {
      return new terminus.HealthIndicatorService();
    }
  }
}

/** The verdict on what was read: `down` beats `degraded` beats `up`. Pure, for the indicator and its tests. */
export function assessGearmanHealth(
  snapshots: readonly JobServerSnapshot[],
  workers: readonly GearmanWorkerHealth[],
  options: GearmanHealthCheckOptions,
): { details: GearmanHealthDetails; severity: 'up' | 'degraded' | 'down' } {
  const down: string[] = [];
  const crossed: string[] = [];
  const servers: Record<string, GearmanServerHealth> = {};
  for (const snapshot of snapshots) {
    if (!snapshot.reachable) {
      servers[snapshot.server] = { reachable: false, error: snapshot.error };
      continue;
    }
    const functions: Record<string, { queued: number; running: number; workers: number }> = {};
    for (const fn of snapshot.functions) functions[fn.name] = { queued: fn.queued, running: fn.running, workers: fn.workers };
    servers[snapshot.server] = { reachable: true, rttMs: round(snapshot.rttMs), version: snapshot.version, functions };
  }
  const unreachable = snapshots.filter((snapshot) => !snapshot.reachable).map((snapshot) => snapshot.server);
  if (snapshots.length > 0 && unreachable.length === snapshots.length) down.push(`no job server answers (${unreachable.join(', ')})`);
  else if (options.reachable === 'all' && unreachable.length > 0) down.push(`job server ${unreachable.join(', ')} does not answer`);

  workers.forEach((worker, index) => {
    const name = `worker ${index + 1} (${worker.functions.join(', ') || 'no functions'})`;
    if (!worker.listening) down.push(`${name} is not listening`);
    else if (worker.connectedServers.length === 0) down.push(`${name} is connected to no job server`);
  });

  const totals = new Map<string, { queued: number; workers: number }>();
  for (const snapshot of snapshots) {
    for (const fn of snapshot.functions) {
      const total = totals.get(fn.name) ?? { queued: 0, workers: 0 };
      totals.set(fn.name, { queued: total.queued + fn.queued, workers: total.workers + fn.workers });
    }
  }
  const reachableCount = snapshots.length - unreachable.length;
  if (reachableCount > 0) {
    const required =
      options.requireWorkers === 'queued'
        ? [...totals].filter(([, total]) => total.queued > 0).map(([name]) => name)
        : (options.requireWorkers ?? []);
    for (const name of required) {
      if ((totals.get(name)?.workers ?? 0) === 0) crossed.push(`no worker for ${name}`);
    }
    for (const [name, total] of totals) {
      const limit = typeof options.maxQueued === 'number' ? options.maxQueued : options.maxQueued?.[name];
      if (limit !== undefined && total.queued > limit) crossed.push(`${name} has ${total.queued} queued jobs, over ${limit}`);
    }
  }
  const problems = [...down, ...crossed];
  const details: GearmanHealthDetails = { servers, workers, ...(problems.length > 0 ? { problems } : {}) };
  if (down.length > 0) return { details, severity: 'down' };
  if (crossed.length > 0) return { details, severity: options.thresholdStatus === 'degraded' ? 'degraded' : 'down' };
  return { details, severity: 'up' };
}

function round(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 1000) / 1000;
}
