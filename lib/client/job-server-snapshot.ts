import type { ServerAddress } from '../connection/server-address.js';
import { resolveServerAddress } from '../connection/server-address.js';
import { GearmanAdminClient, type GearmanAdminClientOptions } from './admin-client.js';

/** One function as a job server reports it. */
export interface FunctionSnapshot {
  readonly name: string;
  /** Jobs waiting for a worker. */
  readonly queued: number;
  /** Jobs a worker is running. */
  readonly running: number;
  /** Connected workers that registered the function. */
  readonly workers: number;
  /** Queued jobs by priority, where the server answers `prioritystatus`. */
  readonly queuedByPriority?: { readonly high: number; readonly normal: number; readonly low: number };
}

/** One worker connection: where from, its client id, the functions it registered. */
export interface WorkerSnapshot {
  readonly ip: string;
  readonly clientId: string;
  readonly functions: readonly string[];
}

/** A job a worker runs now, with its progress (WORK_STATUS), read with GET_STATUS. */
export interface RunningJobSnapshot {
  readonly handle: string;
  readonly numerator: number;
  readonly denominator: number;
}

/** What a job server tells through its admin protocol and ECHO, read at `at`. */
export interface JobServerSnapshot {
  /** `host:port`. */
  readonly server: string;
  readonly reachable: boolean;
  /** Why the server could not be read, when it could not. */
  readonly error?: string;
  /** ECHO round trip in ms. */
  readonly rttMs?: number;
  readonly version?: string;
  readonly functions: readonly FunctionSnapshot[];
  /** Connections that registered at least one function. */
  readonly workers: readonly WorkerSnapshot[];
  /** Every connection the server lists (clients, workers, admin tools, this one included). */
  readonly connections?: number;
  /** Running jobs with their progress, when asked for (see `runningJobs`), up to its limit. */
  readonly runningJobs?: readonly RunningJobSnapshot[];
  /** Epoch ms. */
  readonly at: number;
}

export interface InspectOptions extends GearmanAdminClientOptions {
  /**
   * Also list running jobs with their progress, up to this many (`show jobs`, then GET_STATUS for
   * each job); default 0, none. Skipped when the server holds more than 10 000 jobs, to keep a
   * poll cheap on a big queue.
   */
  runningJobs?: number;
}

/** `show jobs` lists every job the server holds: past this many, running jobs are not listed. */
const MAX_JOBS_TO_LIST = 10_000;

/**
 * Reads one job server (gearmand or this package's) over its admin protocol: ECHO round trip,
 * version, functions with queued / running / worker counts, workers and their functions.
 * Never throws: an unreachable or misbehaving server gives `reachable: false` and the reason.
 */
export async function inspectJobServer(server: ServerAddress, options: InspectOptions = {}): Promise<JobServerSnapshot> {
  const label = resolveServerAddress(server, options.tls).label;
  let admin: GearmanAdminClient | undefined;
  try {
    admin = await GearmanAdminClient.connect(server, options);
    const rttMs = await admin.ping();
    const [version, status, priority, workerRows] = await Promise.all([
      admin.version(),
      admin.status(),
      admin.priorityStatus(),
      admin.workers(),
    ]);
    const byPriority = new Map(priority?.map((row) => [row.name, row]));
    const functions = status.map((row): FunctionSnapshot => {
      const queued = byPriority.get(row.name);
      return {
        name: row.name,
        queued: Math.max(0, row.total - row.running),
        running: row.running,
        workers: row.workers,
        ...(queued ? { queuedByPriority: { high: queued.high, normal: queued.normal, low: queued.low } } : {}),
      };
    });
    const workers = workerRows
      .filter((row) => row.functions.length > 0)
      .map((row): WorkerSnapshot => ({ ip: row.ip, clientId: row.clientId, functions: row.functions }));
    const snapshot = { server: label, reachable: true, rttMs, version, functions, workers, connections: workerRows.length, at: Date.now() };
    const limit = options.runningJobs ?? 0;
    const total = status.reduce((sum, row) => sum + row.total, 0);
    const anyRunning = status.some((row) => row.running > 0);
    if (limit <= 0 || !anyRunning || total > MAX_JOBS_TO_LIST) return snapshot;
    return { ...snapshot, runningJobs: await runningJobs(admin, limit) };
  } catch (error) {
    return { server: label, reachable: false, error: (error as Error).message, functions: [], workers: [], at: Date.now() };
  } finally {
    admin?.close();
  }
}

async function runningJobs(admin: GearmanAdminClient, limit: number): Promise<RunningJobSnapshot[]> {
  // A cancelled job that still runs is listed as ignored until its worker ends it: it is no longer anyone's.
  const jobs = (await admin.jobs()).filter((job) => !job.ignored);
  const found: RunningJobSnapshot[] = [];
  // Asked in small groups: each GET_STATUS is one round trip on the same connection.
  for (let start = 0; start < jobs.length && found.length < limit; start += 32) {
    const statuses = await Promise.all(jobs.slice(start, start + 32).map((job) => admin.jobStatus(job.handle)));
    for (const status of statuses) {
      if (status.known && status.running && found.length < limit) {
        found.push({ handle: status.handle, numerator: status.numerator, denominator: status.denominator });
      }
    }
  }
  return found;
}
