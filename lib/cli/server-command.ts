import { createWriteStream, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ADMIN_COMMANDS_SETTINGS, type AdminCommandsSetting } from '../job-server/admin-access.js';
import {
  GearmanJobServer,
  JOB_SERVER_VERSION,
  VERBOSE_LEVELS,
  type GearmanJobServerOptions,
  type JobServerListener,
  type JobServerTlsOptions,
} from '../job-server/gearman-job-server.js';
import { JOB_HANDLE_STYLES, type JobHandleStyle } from '../job-server/job-handles.js';
import { NO_LIMITS, type JobServerLimits } from '../job-server/server-limits.js';
import { silentLogger, type GearmanLogger } from '../common/logger.js';
import { DEFAULT_GEARMAN_HOST, DEFAULT_GEARMAN_PORT } from '../common/defaults.js';
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
      --job-handle-prefix TEXT job handles start with TEXT: (default H:<hostname>)
      --max-packet-size BYTES  largest packet accepted (default 67108864)
      --result-max-age SECONDS keep an ended background job's outcome this long (default 86400)
      --result-max-count N     keep at most N outcomes, the oldest dropped first (default 100000)
      --result-max-bytes BYTES keep at most BYTES of results (default 67108864)
      --no-results             keep no outcomes, answer no gearman.result, run no batch (as gearmand)
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

TLS (gearmand's flags; a TLS port never takes plaintext):
      --ssl                    TLS on the -L/-p address
      --ssl-certificate FILE   the server's certificate (PEM)
      --ssl-key FILE           its private key (PEM)
      --ssl-ca-file FILE       CA (PEM) that signs client certificates: every client must present one
      --plaintext-listen HOST:PORT
                               also listen there without TLS (e.g. 127.0.0.1:4731); repeatable

Security:
      --admin-commands LEVEL   read-only (default), loopback, or all (gearmand's: anyone may
                               cancel jobs, drop functions, list every job)
      --admin-certificate NAME a client certificate (common name, DNS name or SHA-256
                               fingerprint) allowed every admin command; repeatable
      --job-handles STYLE      unguessable (default) or sequential (gearmand's H:host:N)

Limits (0 turns one off; see docs/security.md):
      --output-buffer-soft BYTES      stop reading a peer owed this much (default 4194304)
      --output-buffer-hard BYTES      close a peer owed this much (default 67108864)
      --frames-per-turn N             packets handled per connection per turn (default 4)
      --max-queued-per-function N     jobs queued per function (default 2000000)
      --max-queued-per-connection N   jobs queued per connection (default 0 = none)
      --max-queued-bytes BYTES        estimated memory of all queued jobs (default: half the heap)
      --max-connections N             connections at once (default 10000)
      --max-connections-per-address N connections at once from one address (default 0 = none)
      --idle-timeout SECONDS          close connections idle this long (default 300)
      --packet-timeout SECONDS        close a connection whose packet is not whole in time (default 30)
      --no-limits                     every limit off (gearmand's behaviour)

Accepted for gearmand compatibility, without effect here: -t/--threads, -b/--backlog,
-f/--file-descriptors, -R/--round-robin, -w/--worker-wakeup, --hashtable-buckets,
--keepalive-interval, --keepalive-count, --syslog, --coredump. Not supported: -d/--daemon,
-u/--user. Every flag takes its value as --flag VALUE or --flag=VALUE.

Prints "listening on HOST:PORT" once accepting (a line per address, " (TLS)" after a TLS one;
then "http on http://HOST:PORT/" with --http-port);
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
const UNSUPPORTED_FLAGS = ['daemon', 'user'];

/** The limit each flag sets, and whether it is given in seconds (else a count or bytes). */
const LIMIT_FLAGS: readonly [string, keyof JobServerLimits, 'seconds' | 'number'][] = [
  ['output-buffer-soft', 'outputBufferSoftBytes', 'number'],
  ['output-buffer-hard', 'outputBufferHardBytes', 'number'],
  ['frames-per-turn', 'framesPerTurn', 'number'],
  ['max-queued-per-function', 'maxQueuedJobsPerFunction', 'number'],
  ['max-queued-per-connection', 'maxQueuedJobsPerConnection', 'number'],
  ['max-queued-bytes', 'maxQueuedBytes', 'number'],
  ['max-connections', 'maxConnections', 'number'],
  ['max-connections-per-address', 'maxConnectionsPerAddress', 'number'],
  ['idle-timeout', 'idleTimeoutMs', 'seconds'],
  ['packet-timeout', 'packetTimeoutMs', 'seconds'],
];

function wholeNumber(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function seconds(flag: string, text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`${flag} takes a number of seconds, got ${JSON.stringify(text)}`);
  return Math.round(Number(text) * 1000);
}

function oneOf<T extends string>(flag: string, text: string | undefined, allowed: readonly T[]): T | undefined {
  if (text === undefined) return undefined;
  if (!allowed.includes(text as T)) throw new UsageError(`${flag} takes one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}

function readPem(flag: string, file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (error) {
    throw new UsageError(`${flag} ${file}: ${(error as Error).message}`);
  }
}

/** `HOST:PORT` or `[IPv6]:PORT`. */
function hostAndPort(flag: string, text: string): JobServerListener {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!match) throw new UsageError(`${flag} takes HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: match[1] ?? match[2], port: wholeNumber(flag, match[3], 0, 65535) };
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
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
        'result-max-age': { type: 'string' },
        'result-max-count': { type: 'string' },
        'result-max-bytes': { type: 'string' },
        'no-results': { type: 'boolean' },
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
        'plaintext-listen': { type: 'string', multiple: true },
        'admin-commands': { type: 'string' },
        'admin-certificate': { type: 'string', multiple: true },
        'job-handles': { type: 'string' },
        'no-limits': { type: 'boolean' },
        ...Object.fromEntries(LIMIT_FLAGS.map(([flag]) => [flag, { type: 'string' as const }])),
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
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
  const limits: Partial<JobServerLimits> = values['no-limits'] ? { ...NO_LIMITS } : {};
  for (const [flag, name, unit] of LIMIT_FLAGS) {
    const text = values[flag] as string | undefined;
    if (text === undefined) continue;
    limits[name] = unit === 'seconds' ? seconds(`--${flag}`, text) : wholeNumber(`--${flag}`, text, 0, Number.MAX_SAFE_INTEGER);
  }
  const main: JobServerListener = {
    host: (values.listen as string | undefined) ?? DEFAULT_GEARMAN_HOST,
    port: wholeNumber('--port', values.port as string | undefined, 0, 65535) ?? DEFAULT_GEARMAN_PORT,
    tls: values.ssl === true,
  };
  const plaintext = ((values['plaintext-listen'] as string[] | undefined) ?? []).map((text) => hostAndPort('--plaintext-listen', text));
  const tlsFiles = ['ssl-certificate', 'ssl-key', 'ssl-ca-file'].filter((flag) => values[flag] !== undefined);
  if (!main.tls && tlsFiles.length > 0) throw new UsageError(`--${tlsFiles[0]} needs --ssl`);
  let tls: JobServerTlsOptions | undefined;
  if (main.tls) {
    if (values['ssl-certificate'] === undefined || values['ssl-key'] === undefined) {
      throw new UsageError('--ssl needs --ssl-certificate and --ssl-key');
    }
    tls = {
      cert: readPem('--ssl-certificate', values['ssl-certificate'] as string),
      key: readPem('--ssl-key', values['ssl-key'] as string),
      ca: readPem('--ssl-ca-file', values['ssl-ca-file'] as string | undefined),
    };
  }
  const maxAgeSeconds = wholeNumber('--result-max-age', values['result-max-age'] as string | undefined, 1, 2 ** 31 - 1);
  const retention = {
    ...(maxAgeSeconds === undefined ? {} : { maxAgeMs: maxAgeSeconds * 1000 }),
    ...optional('maxCount', wholeNumber('--result-max-count', values['result-max-count'] as string | undefined, 1, 2 ** 31 - 1)),
    ...optional(
      'maxBytes',
      wholeNumber('--result-max-bytes', values['result-max-bytes'] as string | undefined, 1, Number.MAX_SAFE_INTEGER),
    ),
  };
  if (values['no-results'] === true && Object.keys(retention).length > 0) {
    throw new UsageError('--no-results keeps nothing: it takes no --result-max-* flag');
  }
  return {
    options: {
      ...(plaintext.length > 0 ? { listeners: [main, ...plaintext] } : { host: main.host, port: main.port }),
      tls,
      adminCommands: oneOf<AdminCommandsSetting>(
        '--admin-commands',
        values['admin-commands'] as string | undefined,
        ADMIN_COMMANDS_SETTINGS,
      ),
      adminCertificates: values['admin-certificate'] as string[] | undefined,
      jobHandles: oneOf<JobHandleStyle>('--job-handles', values['job-handles'] as string | undefined, JOB_HANDLE_STYLES),
      limits,
      jobRetries: wholeNumber('--job-retries', values['job-retries'] as string | undefined, 0, 2 ** 31 - 1) ?? 0,
      exceptions: values.exceptions === true,
      keepalive: idleSeconds !== undefined ? idleSeconds * 1000 : values.keepalive === true,
      jobHandlePrefix: values['job-handle-prefix'] as string | undefined,
      maxPacketSize: wholeNumber('--max-packet-size', values['max-packet-size'] as string | undefined, 1, 0xffffffff),
      queue,
      results: values['no-results'] === true ? false : retention,
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
function queueOptions(values: Record<string, string | boolean | string[] | undefined>): QueueStoreOptions | undefined {
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
  // Listening for the signals before the listening line goes out: a signal sent as soon as that
  // line is read must find the handler in place, not end the process by default.
  let stopRequested!: () => void;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const stop = () => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    stopRequested();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  let dashboard: GearmanDashboard | undefined;
  try {
    await server.listen();
    if (command.pidFile) writeFileSync(command.pidFile, `${process.pid}\n`);
    for (const { host, port, tls } of server.addresses()) process.stdout.write(`listening on ${host}:${port}${tls ? ' (TLS)' : ''}\n`);
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
  } catch (error) {
    stop();
    throw error;
  }
  await stopped;
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
  // The dashboard reads the server over the admin protocol in plaintext (the in-memory channel).
  const plaintext = server.addresses().find((address) => !address.tls);
  if (!plaintext) {
    throw new UsageError('--http-port reads the server over a plaintext listener: add --plaintext-listen 127.0.0.1:PORT beside --ssl');
  }
  const { host, port } = plaintext;
  observing.metrics?.watchJobServer(server);
  const dashboard = new GearmanDashboard({
    servers: [`${host.includes(':') ? `[${host}]` : host}:${port}`],
    host: command.options.host ?? command.options.listeners?.[0]?.host,
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
