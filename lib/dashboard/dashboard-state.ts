import { inspectJobServer, type JobServerSnapshot } from '../client/job-server-snapshot.js';
import type { KeptResultsSummary } from '../client/admin-client.js';
import type { ServerAddress } from '../connection/server-address.js';
import type { BatchRow } from '../protocol/admin.js';

/** Jobs ended so far, counted from the start: the chart plots their growth per interval. */
export interface JobCounts {
  readonly completed: number;
  readonly failed: number;
}

/** Where the throughput chart's counts come from, and what to call it on the page. */
export interface ThroughputSource {
  /** E.g. `this app's workers`, `the job server`. */
  readonly label: string;
  read(): JobCounts;
}

/** One worker of the app that serves the page (the module's dashboard). */
export interface AppWorkerState {
  readonly listening: boolean;
  readonly functions: readonly string[];
  readonly connectedServers: readonly string[];
  readonly jobsInFlight: number;
}

/** What a job server keeps of ended jobs, and the batches it runs (where it may list them). */
export type ResultsState = KeptResultsSummary & { readonly batches?: readonly BatchRow[] };

/** A job server as the page shows it. */
export type ServerState = JobServerSnapshot & {
  /** Functions the server holds back from workers (`pause function`), where it tells. */
  readonly paused?: readonly string[];
  /** Where the server keeps results (this package's, not gearmand). */
  readonly results?: ResultsState;
};

/** What the page gets, once (`api/state`) and at every interval (`api/events`). */
export interface DashboardState {
  readonly at: number;
  readonly intervalMs: number;
  /** Whether the page offers actions (cancel a job, pause a function). */
  readonly actions: boolean;
  readonly servers: readonly ServerState[];
  /** Jobs completed and failed in each interval, oldest first, up to `capacity` of them. */
  readonly throughput?: {
    readonly source: string;
    readonly intervalMs: number;
    readonly capacity: number;
    readonly points: readonly (readonly [at: number, completed: number, failed: number])[];
  };
  readonly appWorkers?: readonly AppWorkerState[];
}

export interface DashboardStateOptions {
  readonly servers: readonly ServerAddress[];
  readonly intervalMs: number;
  readonly actions: boolean;
  readonly throughput?: ThroughputSource;
  readonly appWorkers?: () => readonly AppWorkerState[];
  /** Per job server and request. */
  readonly timeoutMs: number;
  /** Running jobs listed per server, with their progress. */
  readonly runningJobs: number;
  /** How many intervals the chart keeps (600 at 1 s: ten minutes). */
  readonly historyPoints: number;
  /**
   * Reads, over one admin connection, the functions a server holds back (`paused`) and what it
   * keeps of ended jobs with its running batches (`results`); each undefined when it does not tell.
   */
  readonly extras?: (server: ServerAddress) => Promise<{ paused?: readonly string[]; results?: ResultsState }>;
}

/**
 * What the dashboard shows, gathered on demand: the job servers are read over their admin protocol
 * (so gearmand's too) at most once an interval however many pages watch, and the throughput counts
 * are sampled every interval from the start, into a bounded history.
 */
export class DashboardStateSource {
  private readonly history: [number, number, number][] = [];
  private last: JobCounts | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private reading: { at: number; state: Promise<DashboardState> } | undefined;

  constructor(private readonly options: DashboardStateOptions) {}

  /** Starts sampling the throughput counts. */
  start(): void {
    if (!this.options.throughput || this.sampler) return;
    this.last = this.options.throughput.read();
    this.sampler = setInterval(() => this.sample(), this.options.intervalMs);
    this.sampler.unref();
  }

  stop(): void {
    clearInterval(this.sampler);
    this.sampler = undefined;
  }

  /** The state now; a call within half an interval of the last shares its reading of the servers. */
  current(): Promise<DashboardState> {
    const now = Date.now();
    if (this.reading && now - this.reading.at < this.options.intervalMs / 2) return this.reading.state;
    const state = this.read(now);
    this.reading = { at: now, state };
    return state;
  }

  private sample(): void {
    const counts = this.options.throughput!.read();
    const last = this.last ?? counts;
    this.history.push([Date.now(), Math.max(0, counts.completed - last.completed), Math.max(0, counts.failed - last.failed)]);
    if (this.history.length > this.options.historyPoints) this.history.shift();
    this.last = counts;
  }

  private async read(now: number): Promise<DashboardState> {
    const { servers, timeoutMs, runningJobs, extras } = this.options;
    const snapshots = await Promise.all(
      servers.map(async (server): Promise<ServerState> => {
        const snapshot = await inspectJobServer(server, { timeoutMs, runningJobs });
        if (!snapshot.reachable) return snapshot;
        const { paused, results } = (await extras?.(server).catch(() => undefined)) ?? {};
        return { ...snapshot, ...(paused ? { paused } : {}), ...(results ? { results } : {}) };
      }),
    );
    const { throughput, appWorkers, intervalMs, actions, historyPoints } = this.options;
    return {
      at: now,
      intervalMs,
      actions,
      servers: snapshots,
      ...(throughput ? { throughput: { source: throughput.label, intervalMs, capacity: historyPoints, points: [...this.history] } } : {}),
      ...(appWorkers ? { appWorkers: appWorkers() } : {}),
    };
  }
}
