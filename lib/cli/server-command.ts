import { createWriteStream, unlinkSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GearmanJobServer, JOB_SERVER_VERSION, VERBOSE_LEVELS, type GearmanJobServerOptions } from '../job-server/gearman-job-server.js';
import { silentLogger, type GearmanLogger } from '../common/logger.js';
import { DEFAULT_GEARMAN_PORT } from '../common/defaults.js';
import type { QueueStoreOptions } from '../job-server/queue-store.js';
import { GearmanMissingPeerError } from '../common/errors.js';
import type { ThroughputSource } from '../dashboard/dashboard-state.js';
import { GearmanDashboard } from '../dashboard/gearman-dashboard.js';
import { ServerJobCounter } from '../dashboard/server-job-counter.js';
import type { JobLifecycle } from '../job-server/job-lifecycle.js';
import { GearmanMetrics } from '../metrics/gearman-metrics.js';
import { UsageError } from './usage-error.js';

export const SERVER_USAGE = `Usage: nestjs-gearman server [options]

Starts a gearmand-compatible Gearman job server: an in-memory queue, or background jobs kept in a
SQLite file that gearmand's -q libsqlite3 reads and writes too.

Options (gearmand's names where gearmand has them):
  -L, --listen HOST            address to listen on (default 127.0.0.1)
  -p, --port PORT              port to listen on (default 4730; 0 = any free port)
  -j, --job-retries N          fail a job after its worker vanished N times (default 0 = never)
      --exceptions             relay WORK_EXCEPTION to every client, asked for or not
      --keepalive              turn TCP keepalive on for every connection
      --keepalive-idle SECONDS idle time before keepalive probes (default 30; implies --keepalive)
      --job-handle-prefix TEXT job handles are TEXT:<counter> (default H:<hostname>)
      --max-packet-size BYTES  largest packet accepted (default 67108864)
  -l, --log-file FILE          where warnings and errors go: stderr (default), none, or a file
      --verbose LEVEL          FATAL ... ERROR (default), WARNING, NOTICE, INFO, DEBUG
  -P, --pid-file FILE          write the process id to FILE (removed on exit)
  -q, --queue-type TYPE        builtin (in memory, the default) or libsqlite3
      --libsqlite3-db FILE     the SQLite file of -q libsqlite3 (created when missing)
      --libsqlite3-table NAME  its table (default gearman_queue)
      --store-queue-on-shutdown  write the queue only at a clean shutdown (a crash loses it)
      --sqlite-synchronous MODE  normal (default: survives a crash of the process) or full
                               (also survives power loss: one fsync per batch of submits)
      --http-port PORT         serve the live dashboard at / and Prometheus metrics at /metrics
                               on this port of the --listen address (0 = any free port)
      --dashboard-actions      let the dashboard cancel jobs and pause functions (default: read-only)
  -V, --version                print the version and exit
  -h, --help                   show this help

Accepted for gearmand compatibility, without effect here: -t/--threads, -b/--backlog,
-f/--file-descriptors, -R/--round-robin, -w/--worker-wakeup, --hashtable-buckets,
--keepalive-interval, --keepalive-count, --syslog, --coredump. Not supported: -d/--daemon,
-u/--user, --ssl and its files.

Prints "listening on HOST:PORT" once accepting (then "http on http://HOST:PORT/" with --http-port);
SIGTERM or SIGINT closes it cleanly.
`;

export interface ServerCommand {
  readonly options: GearmanJobServerOptions;
  readonly logFile: string;
  readonly verbose: string;
  readonly pidFile: string | undefined;
  /** Where the dashboard and /metrics are served; undefined: not at all. */
  readonly httpPort: number | undefined;
  readonly dashboardActions: boolean;
  /** gearmand flags given that change nothing here, to mention once. */
  readonly ignored: string[];
}

const IGNORED_FLAGS = [
  'threads',
  'backlog',
  'file-descriptors',
  'round-robin',
  'worker-wakeup',
  'hashtable-buckets',
  'keepalive-interval',
  'keepalive-count',
  'syslog',
  'coredump',
];
const UNSUPPORTED_FLAGS = ['daemon', 'user', 'ssl', 'ssl-ca-file', 'ssl-certificate', 'ssl-key'];

function wholeNumber(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Turns `server` flags into what to run, or `'help'` / `'version'`. Throws UsageError. */
export function parseServerArguments(args: string[]): ServerCommand | 'help' | 'version' {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string', short: 'L' },
        port: { type: 'string', short: 'p' },
        'job-retries': { type: 'string', short: 'j' },
        exceptions: { type: 'boolean' },
        keepalive: { type: 'boolean' },
        'keepalive-idle': { type: 'string' },
        'job-handle-prefix': { type: 'string' },
        'max-packet-size': { type: 'string' },
        'log-file': { type: 'string', short: 'l' },
        verbose: { type: 'string' },
        'pid-file': { type: 'string', short: 'P' },
        'http-port': { type: 'string' },
        'dashboard-actions': { type: 'boolean' },
        'queue-type': { type: 'string', short: 'q' },
        'libsqlite3-db': { type: 'string' },
        'libsqlite3-table': { type: 'string' },
        'store-queue-on-shutdown': { type: 'boolean' },
        'sqlite-synchronous': { type: 'string' },
        version: { type: 'boolean', short: 'V' },
        help: { type: 'boolean', short: 'h' },
        threads: { type: 'string', short: 't' },
        backlog: { type: 'string', short: 'b' },
        'file-descriptors': { type: 'string', short: 'f' },
        'round-robin': { type: 'boolean', short: 'R' },
        'worker-wakeup': { type: 'string', short: 'w' },
        'hashtable-buckets': { type: 'string' },
        'keepalive-interval': { type: 'string' },
        'keepalive-count': { type: 'string' },
        syslog: { type: 'boolean' },
        coredump: { type: 'boolean' },
        daemon: { type: 'boolean', short: 'd' },
        user: { type: 'string', short: 'u' },
        ssl: { type: 'boolean' },
        'ssl-ca-file': { type: 'string' },
        'ssl-certificate': { type: 'string' },
        'ssl-key': { type: 'string' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return 'help';
  if (values.version) return 'version';
  const unsupported = UNSUPPORTED_FLAGS.find((flag) => values[flag] !== undefined);
  if (unsupported) throw new UsageError(`--${unsupported} is not supported by this server`);
  const queue = queueOptions(values);
  // gearmand's default level.
  const verbose = ((values.verbose as string | undefined) ?? 'ERROR').toUpperCase();
  if (!VERBOSE_LEVELS.includes(verbose))
    throw new UsageError(`--verbose takes one of ${VERBOSE_LEVELS.join(', ')}, got ${JSON.stringify(values.verbose)}`);
  const idleSeconds = wholeNumber('--keepalive-idle', values['keepalive-idle'] as string | undefined, 1, 2_000_000);
  return {
    options: {
      host: (values.listen as string | undefined) ?? '127.0.0.1',
      port: wholeNumber('--port', values.port as string | undefined, 0, 65535) ?? DEFAULT_GEARMAN_PORT,
      jobRetries: wholeNumber('--job-retries', values['job-retries'] as string | undefined, 0, 2 ** 31 - 1) ?? 0,
      exceptions: values.exceptions === true,
      keepalive: idleSeconds !== undefined ? idleSeconds * 1000 : values.keepalive === true,
      jobHandlePrefix: values['job-handle-prefix'] as string | undefined,
      maxPacketSize: wholeNumber('--max-packet-size', values['max-packet-size'] as string | undefined, 1, 0xffffffff),
      queue,
    },
    logFile: (values['log-file'] as string | undefined) ?? 'stderr',
    verbose,
    pidFile: values['pid-file'] as string | undefined,
    httpPort: wholeNumber('--http-port', values['http-port'] as string | undefined, 0, 65535),
    dashboardActions: values['dashboard-actions'] === true,
    ignored: IGNORED_FLAGS.filter((flag) => values[flag] !== undefined),
  };
}

/** gearmand's queue flags: `-q builtin` (the default) or `-q libsqlite3 --libsqlite3-db FILE`. */
function queueOptions(values: Record<string, string | boolean | undefined>): QueueStoreOptions | undefined {
  const type = (values['queue-type'] as string | undefined)?.toLowerCase();
  const file = values['libsqlite3-db'] as string | undefined;
  const table = values['libsqlite3-table'] as string | undefined;
  const onShutdown = values['store-queue-on-shutdown'] === true;
  const synchronous = (values['sqlite-synchronous'] as string | undefined)?.toLowerCase();
  if (type === undefined || type === 'builtin') {
    const given: [string, boolean][] = [
      ['--libsqlite3-db', file !== undefined],
      ['--libsqlite3-table', table !== undefined],
      ['--store-queue-on-shutdown', onShutdown],
      ['--sqlite-synchronous', synchronous !== undefined],
    ];
    const stray = given.find(([, present]) => present)?.[0];
    if (stray) throw new UsageError(`${stray} needs -q libsqlite3`);
    return undefined;
  }
  if (type !== 'libsqlite3') {
    throw new UsageError(`--queue-type ${String(values['queue-type'])}: this server has builtin (in memory) and libsqlite3`);
  }
  if (file === undefined || file === '') throw new UsageError('-q libsqlite3 needs --libsqlite3-db FILE');
  if (synchronous !== undefined && synchronous !== 'normal' && synchronous !== 'full') {
    throw new UsageError(`--sqlite-synchronous takes normal or full, got ${JSON.stringify(values['sqlite-synchronous'])}`);
  }
  return {
    type: 'sqlite',
    file,
    ...(table !== undefined ? { table } : {}),
    ...(onShutdown ? { storeOnShutdown: true } : {}),
    ...(synchronous !== undefined ? { synchronous } : {}),
  };
}

/** A logger writing lines at or above the verbose level to stderr, a file, or nowhere. */
function lineLogger(logFile: string, verbose: string): GearmanLogger | false {
  if (logFile === 'none') return false;
  const stream = logFile === 'stderr' ? process.stderr : createWriteStream(logFile, { flags: 'a' });
  const level = VERBOSE_LEVELS.indexOf(verbose);
  const line = (minimum: string, tag: string) => (message: unknown) => {
    if (level >= VERBOSE_LEVELS.indexOf(minimum)) stream.write(`${new Date().toISOString()} ${tag} ${String(message)}\n`);
  };
  return { error: line('ERROR', 'ERROR'), warn: line('WARNING', 'WARNING'), log: line('INFO', 'INFO'), debug: line('DEBUG', 'DEBUG') };
}

/** Runs the server until SIGTERM or SIGINT; resolves once it has closed. */
export async function runServer(command: ServerCommand): Promise<void> {
  for (const flag of command.ignored) process.stderr.write(`note: --${flag} has no effect on this server\n`);
  // The dashboard's chart and /metrics count the server's jobs from its lifecycle, so they come first.
  const observing = command.httpPort === undefined ? undefined : await observers();
  let server: GearmanJobServer;
  try {
    server = new GearmanJobServer({
      ...command.options,
      logger: lineLogger(command.logFile, command.verbose),
      verbose: command.verbose,
      lifecycle: observing?.lifecycle,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  await server.listen();
  if (command.pidFile) writeFileSync(command.pidFile, `${process.pid}\n`);
  const { host, port } = server.address();
  process.stdout.write(`listening on ${host}:${port}\n`);
  let dashboard: GearmanDashboard | undefined;
  if (observing) {
    try {
      dashboard = await startDashboard(command, server, observing);
    } catch (error) {
      await server.close();
      throw error;
    }
    const http = dashboard.address();
    process.stdout.write(`http on http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port}/\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await dashboard?.close();
  await server.close();
  if (command.pidFile) unlinkSync(command.pidFile);
}

interface Observers {
  readonly metrics: GearmanMetrics | undefined;
  readonly lifecycle: JobLifecycle;
  readonly throughput: ThroughputSource;
}

/** Metrics with the process's own, or without prom-client a counter for the chart alone. */
async function observers(): Promise<Observers> {
  try {
    const metrics = await GearmanMetrics.create({ processMetrics: true });
    return {
      metrics,
      lifecycle: metrics.jobServerLifecycle(),
      throughput: { label: 'the job server', read: () => metrics.jobServerTotals() },
    };
  } catch (error) {
    if (!(error instanceof GearmanMissingPeerError)) throw error;
    process.stderr.write(`note: no /metrics: ${error.message}\n`);
    const counter = new ServerJobCounter();
    return { metrics: undefined, lifecycle: counter, throughput: counter };
  }
}

/** The dashboard and /metrics of this server, on the --listen address. */
async function startDashboard(command: ServerCommand, server: GearmanJobServer, observing: Observers): Promise<GearmanDashboard> {
  const { host, port } = server.address();
  observing.metrics?.watchJobServer(server);
  const dashboard = new GearmanDashboard({
    servers: [`${host.includes(':') ? `[${host}]` : host}:${port}`],
    host: command.options.host,
    port: command.httpPort,
    actions: command.dashboardActions,
    metrics: observing.metrics,
    throughput: observing.throughput,
    logger: lineLogger(command.logFile, command.verbose) || silentLogger,
  });
  await dashboard.listen();
  return dashboard;
}

export function versionLine(): string {
  return `nestjs-gearman ${JOB_SERVER_VERSION}\n`;
}
