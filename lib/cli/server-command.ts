import { parseArgs } from 'node:util';
import { GearmanJobServer, GearmanJobServerOptions, JobServerLogger } from '../job-server/index.js';

export const SERVER_USAGE = `Usage: nestjs-gearman server [options]

Starts a gearmand-compatible Gearman job server (in-memory queue).

Options (gearmand's names where gearmand has them):
  -L, --listen HOST            address to listen on (default 127.0.0.1)
  -p, --port PORT              port to listen on (default 4730; 0 = any free port)
  -j, --job-retries N          fail a job after its worker vanished N times (default 0 = never)
      --exceptions             relay WORK_EXCEPTION to every client, asked for or not
      --keepalive              turn TCP keepalive on for every connection
      --keepalive-idle SECONDS idle time before keepalive probes (default 30; implies --keepalive)
      --job-handle-prefix TEXT job handles are TEXT:<counter> (default H:<hostname>)
      --max-packet-size BYTES  largest packet accepted (default 67108864)
  -h, --help                   show this help

Prints "listening on HOST:PORT" once accepting; SIGTERM or SIGINT closes it cleanly.
`;

/** A bad command line: the message is shown with the usage, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function wholeNumber(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Turns `server` flags into job server options, or `'help'`. Throws UsageError. */
export function parseServerArguments(args: string[]): GearmanJobServerOptions | 'help' {
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
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values;
  if (values.help) return 'help';
  const idleSeconds = wholeNumber('--keepalive-idle', values['keepalive-idle'], 1, 2_000_000);
  return {
    host: values.listen ?? '127.0.0.1',
    port: wholeNumber('--port', values.port, 0, 65535) ?? 4730,
    jobRetries: wholeNumber('--job-retries', values['job-retries'], 0, 2 ** 31 - 1) ?? 0,
    exceptions: values.exceptions ?? false,
    keepalive: idleSeconds !== undefined ? idleSeconds * 1000 : values.keepalive ?? false,
    jobHandlePrefix: values['job-handle-prefix'],
    maxPacketSize: wholeNumber('--max-packet-size', values['max-packet-size'], 1, 0xffffffff),
  };
}

const stderrLogger: JobServerLogger = {
  log: () => undefined,
  warn: (message) => process.stderr.write(`warning: ${message}\n`),
  error: (message) => process.stderr.write(`error: ${message}\n`),
};

/** Runs the server until SIGTERM or SIGINT; resolves once it has closed. */
export async function runServer(options: GearmanJobServerOptions): Promise<void> {
  let server: GearmanJobServer;
  try {
    server = new GearmanJobServer({ ...options, logger: stderrLogger });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  await server.listen();
  const { host, port } = server.address();
  process.stdout.write(`listening on ${host}:${port}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await server.close();
}
