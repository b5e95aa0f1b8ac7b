import { parseArgs } from 'node:util';
import { inspectJobServer } from '../client/job-server-snapshot.js';
import { DEFAULT_GEARMAN_HOST, DEFAULT_GEARMAN_PORT } from '../common/defaults.js';
import { formatStatus } from './status-table.js';
import { UsageError } from './usage-error.js';

export const STATUS_USAGE = `Usage: nestjs-gearman status [-h HOST] [-p PORT] [--watch [--interval SECONDS]]

Shows a job server's functions (queued, running, workers, queued by priority), its running jobs
with their progress, and its workers,
read over the text admin protocol: works with gearmand and with \`nestjs-gearman server\`.

Options (gearadmin's names):
  -h, --host HOST         the job server (default 127.0.0.1)
  -p, --port PORT         its port (default 4730)
  -w, --watch             refresh until Ctrl-C
  -i, --interval SECONDS  time between refreshes with --watch (default 2)
  -t, --timeout MS        how long to wait for the server (default 5000)
      --help              show this help

Exit status: 0 when the server answered, 1 when it could not be read (without --watch).
`;

export interface StatusCommand {
  readonly server: string;
  readonly watch: boolean;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/** Turns `status` flags into what to show, or `'help'`. Throws UsageError. */
export function parseStatusArguments(args: string[]): StatusCommand | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string', short: 'h' },
        port: { type: 'string', short: 'p' },
        watch: { type: 'boolean', short: 'w' },
        interval: { type: 'string', short: 'i' },
        timeout: { type: 'string', short: 't' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const port = (values.port as string | undefined) ?? String(DEFAULT_GEARMAN_PORT);
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    throw new UsageError(`--port takes 1 to 65535, got ${JSON.stringify(port)}`);
  const host = (values.host as string | undefined) ?? DEFAULT_GEARMAN_HOST;
  const interval = Number((values.interval as string | undefined) ?? '2');
  if (!(interval >= 0.1 && interval <= 3600))
    throw new UsageError(`--interval takes 0.1 to 3600 seconds, got ${JSON.stringify(values.interval)}`);
  const timeout = (values.timeout as string | undefined) ?? '5000';
  if (!/^\d+$/.test(timeout) || Number(timeout) < 1)
    throw new UsageError(`--timeout takes a whole number of ms ≥ 1, got ${JSON.stringify(timeout)}`);
  return {
    server: host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`,
    watch: values.watch === true,
    intervalMs: Math.round(interval * 1000),
    timeoutMs: Number(timeout),
  };
}

const CLEAR_SCREEN = '\x1b[H\x1b[2J';
/** Running jobs listed, with their progress. */
const RUNNING_JOBS_SHOWN = 20;

/** Prints the summary once (exit status 1 when unreachable), or every interval until SIGINT/SIGTERM with --watch. */
export async function runStatus(command: StatusCommand, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (!command.watch) {
    const snapshot = await inspectJobServer(command.server, { timeoutMs: command.timeoutMs, runningJobs: RUNNING_JOBS_SHOWN });
    out.write(formatStatus(snapshot));
    return snapshot.reachable ? 0 : 1;
  }
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    while (!stopped) {
      const snapshot = await inspectJobServer(command.server, { timeoutMs: command.timeoutMs, runningJobs: RUNNING_JOBS_SHOWN });
      if (stopped) break;
      out.write(
        `${CLEAR_SCREEN}${new Date(snapshot.at).toISOString()}  (every ${command.intervalMs / 1000} s, Ctrl-C to stop)\n${formatStatus(snapshot)}`,
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, command.intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}
