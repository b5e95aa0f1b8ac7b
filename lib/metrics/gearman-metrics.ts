import type * as PromClient from 'prom-client';
import type { ClientJobOutcome, GearmanClientObserver } from '../client/client-observer.js';
import { inspectJobServer, type JobServerSnapshot } from '../client/job-server-snapshot.js';
import { loadOptionalPeer } from '../common/optional-peer.js';
import type { ServerAddress } from '../connection/server-address.js';
import type { GearmanJobServer, JobServerStats } from '../job-server/gearman-job-server.js';
import type { JobLifecycle, JobOutcome, RequeueReason } from '../job-server/job-lifecycle.js';
import type { WorkerJobOutcome } from '../worker/worker-job.js';
import type { GearmanWorkerObserver } from '../worker/worker-observer.js';
import {
  CounterFamily,
  GaugeFamily,
  HistogramFamily,
  type CounterSeries,
  type GaugeSeries,
  type HistogramSeries,
} from './metric-families.js';

/**
 * The parts of a prom-client `Registry` used here, typed here so that this package's types need no
 * prom-client. prom-client's `register` (the default registry) and any `new Registry()` fit.
 */
export interface PrometheusRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface GearmanMetricsOptions {
  /** Where the metrics are registered; default prom-client's default registry (`register`), which `@willsoto/nestjs-prometheus` serves. */
  registry?: PrometheusRegistry;
  /** Buckets of the duration histograms, in seconds. */
  buckets?: number[];
  /**
   * Job servers to report as `gearman_server_*` gauges, read over their admin protocol at each scrape
   * (gearmand's too, as an exporter would). Default none.
   */
  jobServers?: ServerAddress[];
  /** How long a scrape waits for each job server; default 2000 ms. */
  jobServerTimeoutMs?: number;
  /**
   * Also the process's memory and CPU, under prom-client's default names (`process_resident_memory_bytes`,
   * `nodejs_heap_size_used_bytes`, `process_cpu_seconds_total`, ...), read at scrape time only; default
   * false. Skipped when the registry has them already (an app that called `collectDefaultMetrics()`).
   */
  processMetrics?: boolean;
}

/** Seconds, for job durations: a millisecond to a minute. */
export const DEFAULT_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A scrape within this long of the last one reuses its reading of the job servers. */
const SNAPSHOT_REUSE_MS = 1000;

/** What one function's client jobs update, looked up once per job. */
interface ClientSeries {
  readonly submitted: CounterSeries;
  readonly replies: CounterSeries;
  readonly duration: HistogramSeries;
  readonly failures: Partial<Record<ClientJobOutcome, CounterSeries>>;
}

/** What one function's worker jobs update, looked up once per job. */
interface WorkerSeries {
  readonly jobs: CounterSeries;
  readonly inFlight: GaugeSeries;
  readonly durations: Partial<Record<WorkerJobOutcome | 'timeout', HistogramSeries>>;
  readonly failures: Partial<Record<WorkerJobOutcome, CounterSeries>>;
  timeouts: CounterSeries | undefined;
}

/** What one function's jobs on this process's job server update, looked up once per event. */
interface ServerJobSeries {
  readonly accepted: [foreground: CounterSeries | undefined, background: CounterSeries | undefined];
  completed: CounterSeries | undefined;
  readonly failed: Partial<Record<JobOutcome['kind'], CounterSeries>>;
  readonly requeued: Partial<Record<RequeueReason, CounterSeries>>;
}

/**
 * Prometheus metrics of Gearman clients, workers and job servers, in a prom-client registry
 * (prom-client is an optional peer dependency, loaded by `create()`). Give `client` to a client's
 * and `worker` to a worker's `observer` option (GearmanModule does it with its `metrics` option).
 * Names and labels follow Prometheus conventions (`_total` counters, `_seconds` durations);
 * docs/operating.md has the table. Several instances may share a registry: they then share its
 * series. A job costs a few map lookups and additions here; prom-client formats at scrape time.
 */
export class GearmanMetrics {
  /** Give to `GearmanClient` / `ClientGearman` as `observer`. */
  readonly client: GearmanClientObserver;
  /** Give to `GearmanWorker` / `ServerGearman` as `observer`. */
  readonly worker: GearmanWorkerObserver;

  private readonly foreground = new Map<string, ClientSeries>();
  private readonly background = new Map<string, ClientSeries>();
  private readonly workerSeries = new Map<string, WorkerSeries>();
  private lastSnapshots: { at: number; snapshots: Promise<JobServerSnapshot[]> } | undefined;
  private readonly serverSeries = new Map<string, ServerJobSeries>();
  /** The job servers read over the admin protocol at each scrape. */
  private readonly watched: ServerAddress[] = [];
  private gaugesRegistered = false;
  private serverFamilies: { accepted: CounterFamily; completed: CounterFamily; failed: CounterFamily; requeued: CounterFamily } | undefined;

  private readonly clientSubmitted: CounterFamily;
  private readonly clientReplies: CounterFamily;
  private readonly clientFailures: CounterFamily;
  private readonly clientDuration: HistogramFamily;
  private readonly workerJobs: CounterFamily;
  private readonly workerInFlight: GaugeFamily;
  private readonly workerFailures: CounterFamily;
  private readonly workerTimeouts: CounterFamily;
  private readonly workerDuration: HistogramFamily;

  private constructor(
    private readonly promRegistry: PromClient.Registry,
    private readonly options: GearmanMetricsOptions,
  ) {
    const buckets = options.buckets ?? DEFAULT_DURATION_BUCKETS;
    this.clientSubmitted = this.register(
      new CounterFamily('gearman_client_jobs_submitted_total', 'Jobs submitted by this process.', ['function', 'mode']),
    );
    this.clientReplies = this.register(
      new CounterFamily(
        'gearman_client_replies_total',
        'Jobs answered: a foreground job its result (WORK_COMPLETE), a background job its handle (JOB_CREATED).',
        ['function', 'mode'],
      ),
    );
    this.clientFailures = this.register(
      new CounterFamily('gearman_client_failures_total', 'Jobs that ended without a result, by reason.', ['function', 'mode', 'reason']),
    );
    this.clientDuration = this.register(
      new HistogramFamily(
        'gearman_client_job_duration_seconds',
        'Time from submit to reply or failure: the whole job for a foreground job, the queueing for a background one.',
        ['function', 'mode'],
        buckets,
      ),
    );
    this.workerJobs = this.register(new CounterFamily('gearman_worker_jobs_total', 'Jobs handed to this process’s workers.', ['function']));
    this.workerInFlight = this.register(
      new GaugeFamily('gearman_worker_jobs_in_flight', 'Jobs this process’s workers run now.', ['function']),
    );
    this.workerFailures = this.register(
      new CounterFamily(
        'gearman_worker_failures_total',
        'Jobs that ended with WORK_FAIL (failed), WORK_EXCEPTION (exception), or lost with their connection (abandoned).',
        ['function', 'reason'],
      ),
    );
    this.workerTimeouts = this.register(
      new CounterFamily('gearman_worker_timeouts_total', 'Jobs that ran past their function’s time limit.', ['function']),
    );
    this.workerDuration = this.register(
      new HistogramFamily(
        'gearman_worker_job_duration_seconds',
        'Time from a job’s arrival at the worker to its end, by outcome.',
        ['function', 'outcome'],
        buckets,
      ),
    );

    this.client = {
      jobSubmitted: (functionName, background) => {
        this.clientSeriesOf(functionName, background).submitted.value++;
      },
      jobEnded: (functionName, background, outcome, seconds) => {
        const series = this.clientSeriesOf(functionName, background);
        series.duration.observe(seconds);
        if (outcome === 'completed') {
          series.replies.value++;
          return;
        }
        const failures = (series.failures[outcome] ??= this.clientFailures.child(
          functionName,
          background ? 'background' : 'foreground',
          outcome,
        ));
        failures.value++;
      },
    };
    this.worker = {
      jobStarted: (functionName) => {
        const series = this.workerSeriesOf(functionName);
        series.jobs.value++;
        series.inFlight.value++;
      },
      jobEnded: (functionName, outcome, seconds) => {
        const series = this.workerSeriesOf(functionName);
        series.inFlight.value--;
        (series.durations[outcome] ??= this.workerDuration.child(functionName, outcome)).observe(seconds);
        if (outcome === 'completed') return;
        if (outcome === 'timeout') (series.timeouts ??= this.workerTimeouts.child(functionName)).value++;
        else (series.failures[outcome] ??= this.workerFailures.child(functionName, outcome)).value++;
      },
    };
    for (const server of options.jobServers ?? []) this.watch(server);
    if (options.processMetrics && promRegistry.getSingleMetric('process_resident_memory_bytes') === undefined)
      this.registerProcessMetrics();
  }

  /** Loads prom-client (GearmanMissingPeerError when it is not installed) and registers the metrics. */
  static async create(options: GearmanMetricsOptions = {}): Promise<GearmanMetrics> {
    const prom = await loadOptionalPeer<typeof PromClient>('prom-client', '^15.0.0', 'Gearman metrics');
    const registry = (options.registry as PromClient.Registry | undefined) ?? prom.register;
    return new GearmanMetrics(registry, options);
  }

  /**
   * A `JobLifecycle` for a `GearmanJobServer` of this process (its `lifecycle` option): counts the
   * jobs it accepts, completes, fails and requeues, by function. Only the hooks it needs are set,
   * so the server makes no other call.
   */
  jobServerLifecycle(): JobLifecycle {
    this.serverFamilies ??= {
      accepted: this.register(
        new CounterFamily(
          'gearman_server_jobs_accepted_total',
          'New jobs this process’s job server accepted (coalesced submits not counted).',
          ['function', 'mode'],
        ),
      ),
      completed: this.register(
        new CounterFamily('gearman_server_jobs_completed_total', 'Jobs this process’s job server saw end with WORK_COMPLETE.', [
          'function',
        ]),
      ),
      failed: this.register(
        new CounterFamily(
          'gearman_server_jobs_failed_total',
          'Jobs this process’s job server saw end otherwise: fail, exception, retries_exhausted, cancelled, abandoned.',
          ['function', 'reason'],
        ),
      ),
      requeued: this.register(
        new CounterFamily(
          'gearman_server_jobs_requeued_total',
          'Jobs given back to the queue because their worker was lost: worker_gone, cant_do, timeout.',
          ['function', 'reason'],
        ),
      ),
    };
    const families = this.serverFamilies;
    return {
      accepted: (job) => {
        const series = this.serverSeriesOf(job.functionName);
        const index = job.background ? 1 : 0;
        (series.accepted[index] ??= families.accepted.child(job.functionName, job.background ? 'background' : 'foreground')).value++;
      },
      requeued: (job, reason) => {
        (this.serverSeriesOf(job.functionName).requeued[reason] ??= families.requeued.child(job.functionName, reason.replace('-', '_')))
          .value++;
      },
      ended: (job, end) => {
        const series = this.serverSeriesOf(job.functionName);
        const kind = end.outcome.kind;
        if (kind === 'complete') (series.completed ??= families.completed.child(job.functionName)).value++;
        else (series.failed[kind] ??= families.failed.child(job.functionName, kind.replace('-', '_'))).value++;
      },
    };
  }

  /** Jobs the job server (see `jobServerLifecycle`) saw end so far: completed, and every other end. */
  jobServerTotals(): { completed: number; failed: number } {
    let completed = 0;
    let failed = 0;
    for (const series of this.serverSeries.values()) {
      completed += series.completed?.value ?? 0;
      for (const counter of Object.values(series.failed)) failed += counter.value;
    }
    return { completed, failed };
  }

  /**
   * A listening `GearmanJobServer` of this process: its `gearman_server_*` gauges (as for
   * `jobServers`), its traffic, bytes received and sent, and what it keeps of ended jobs (results
   * stored, their bytes, batches running), read at scrape time.
   */
  watchJobServer(server: GearmanJobServer): void {
    const { host, port } = server.address();
    const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    this.watch(reachable.includes(':') ? `[${reachable}]:${port}` : `${reachable}:${port}`);
    this.register(
      new CounterFamily('gearman_server_received_bytes_total', 'Bytes this process’s job server received.', [], () => [
        [[], server.stats().bytesReceived],
      ]),
    );
    this.register(
      new CounterFamily('gearman_server_sent_bytes_total', 'Bytes this process’s job server sent.', [], () => [
        [[], server.stats().bytesSent],
      ]),
    );
    const results = (read: (kept: NonNullable<JobServerStats['results']>) => number) => (): [string[], number][] => {
      const kept = server.stats().results;
      return kept ? [[[], read(kept)]] : [];
    };
    this.register(
      new GaugeFamily(
        'gearman_server_results_stored',
        'Outcomes of ended background jobs and batches this process’s job server keeps.',
        [],
        results((kept) => kept.stored),
      ),
    );
    this.register(
      new GaugeFamily(
        'gearman_server_results_bytes',
        'Bytes of the outcomes this process’s job server keeps (results and WORK_DATA parts, with overhead).',
        [],
        results((kept) => kept.bytes),
      ),
    );
    this.register(
      new GaugeFamily(
        'gearman_server_batches_running',
        'Batches this process’s job server coordinates now.',
        [],
        results((kept) => kept.batchesRunning),
      ),
    );
  }

  /** Jobs this instance's workers ended so far: completed, and every other outcome (a timeout too). */
  workerTotals(): { completed: number; failed: number } {
    let completed = 0;
    let failed = 0;
    for (const series of this.workerSeries.values()) {
      for (const [outcome, duration] of Object.entries(series.durations)) {
        if (outcome === 'completed') completed += duration.count;
        else failed += duration.count;
      }
    }
    return { completed, failed };
  }

  /** The registry the metrics are in. */
  get registry(): PrometheusRegistry {
    return this.promRegistry;
  }

  /** The registry's metrics in the Prometheus text format (what `/metrics` serves). */
  metrics(): Promise<string> {
    return this.promRegistry.metrics();
  }

  /** The content type of `metrics()`. */
  get contentType(): string {
    return this.promRegistry.contentType;
  }

  private clientSeriesOf(functionName: string, background: boolean): ClientSeries {
    const byName = background ? this.background : this.foreground;
    let series = byName.get(functionName);
    if (!series) {
      const mode = background ? 'background' : 'foreground';
      series = {
        submitted: this.clientSubmitted.child(functionName, mode),
        replies: this.clientReplies.child(functionName, mode),
        duration: this.clientDuration.child(functionName, mode),
        failures: {},
      };
      byName.set(functionName, series);
    }
    return series;
  }

  private serverSeriesOf(functionName: string): ServerJobSeries {
    let series = this.serverSeries.get(functionName);
    if (!series) {
      series = { accepted: [undefined, undefined], completed: undefined, failed: {}, requeued: {} };
      this.serverSeries.set(functionName, series);
    }
    return series;
  }

  private workerSeriesOf(functionName: string): WorkerSeries {
    let series = this.workerSeries.get(functionName);
    if (!series) {
      series = {
        jobs: this.workerJobs.child(functionName),
        inFlight: this.workerInFlight.child(functionName),
        durations: {},
        failures: {},
        timeouts: undefined,
      };
      this.workerSeries.set(functionName, series);
    }
    return series;
  }

  /** Memory and CPU of this process, read at scrape time: nothing runs between scrapes (no GC observer, no timer). */
  private registerProcessMetrics(): void {
    const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
    const gauge = (name: string, help: string, read: () => number) => this.register(new GaugeFamily(name, help, [], () => [[[], read()]]));
    const counter = (name: string, help: string, read: () => number) =>
      this.register(new CounterFamily(name, help, [], () => [[[], read()]]));
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
    gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', () => process.memoryUsage().heapTotal);
    gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', () => process.memoryUsage().heapUsed);
    gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', () => process.memoryUsage().external);
    counter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', () => process.cpuUsage().user / 1e6);
    counter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', () => process.cpuUsage().system / 1e6);
    counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    });
    gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => startSeconds);
  }

  private watch(server: ServerAddress): void {
    this.watched.push(server);
    if (this.gaugesRegistered) return;
    this.gaugesRegistered = true;
    this.registerJobServerGauges();
  }

  /** The job servers' gauges, read at scrape time from one reading of each server that all of them share. */
  private registerJobServerGauges(): void {
    const gauge = (name: string, help: string, labelNames: string[], read: (snapshot: JobServerSnapshot) => [string[], number][]) =>
      this.register(new GaugeFamily(name, help, labelNames, async () => (await this.snapshots()).flatMap((snapshot) => read(snapshot))));
    gauge('gearman_server_up', 'Whether the job server answered its admin protocol (1) or not (0).', ['server'], (snapshot) => [
      [[snapshot.server], snapshot.reachable ? 1 : 0],
    ]);
    gauge('gearman_server_echo_seconds', 'Round trip of an ECHO to the job server.', ['server'], (snapshot) =>
      snapshot.rttMs === undefined ? [] : [[[snapshot.server], snapshot.rttMs / 1000]],
    );
    gauge('gearman_server_connections', 'Connections the job server lists (clients, workers, admin tools).', ['server'], (snapshot) =>
      snapshot.connections === undefined ? [] : [[[snapshot.server], snapshot.connections]],
    );
    gauge(
      'gearman_server_jobs_queued',
      'Jobs waiting for a worker, by function and priority (`all` where the server does not tell priorities).',
      ['server', 'function', 'priority'],
      (snapshot) =>
        snapshot.functions.flatMap((fn): [string[], number][] => {
          const byPriority = fn.queuedByPriority;
          if (!byPriority) return [[[snapshot.server, fn.name, 'all'], fn.queued]];
          return (['high', 'normal', 'low'] as const).map((priority) => [[snapshot.server, fn.name, priority], byPriority[priority]]);
        }),
    );
    gauge('gearman_server_jobs_running', 'Jobs a worker runs now, by function.', ['server', 'function'], (snapshot) =>
      snapshot.functions.map((fn) => [[snapshot.server, fn.name], fn.running]),
    );
    gauge('gearman_server_workers', 'Workers registered for a function.', ['server', 'function'], (snapshot) =>
      snapshot.functions.map((fn) => [[snapshot.server, fn.name], fn.workers]),
    );
  }

  private snapshots(): Promise<JobServerSnapshot[]> {
    const now = Date.now();
    if (this.lastSnapshots && now - this.lastSnapshots.at < SNAPSHOT_REUSE_MS) return this.lastSnapshots.snapshots;
    const timeoutMs = this.options.jobServerTimeoutMs ?? 2000;
    const snapshots = Promise.all(this.watched.map((server) => inspectJobServer(server, { timeoutMs })));
    this.lastSnapshots = { at: now, snapshots };
    return snapshots;
  }

  /** Registers a family, or returns the one of the same name and kind already in the registry (another instance's). */
  private register<F extends CounterFamily | GaugeFamily | HistogramFamily>(family: F): F {
    const existing = this.promRegistry.getSingleMetric(family.name) as unknown;
    if (existing === undefined) {
      this.promRegistry.registerMetric(family as unknown as PromClient.Metric);
      return family;
    }
    if (existing instanceof (family.constructor as new (...args: never[]) => F)) return existing as F;
    throw new TypeError(`The registry already holds a metric named ${family.name} that is not this package's`);
  }
}
