import { parseServerArguments, type ServerCommand } from '../../lib/cli/server-command.js';
import { UsageError } from '../../lib/cli/usage-error.js';
import { NO_LIMITS } from '../../lib/job-server/server-limits.js';

function parsed(args: string[]): ServerCommand {
  const command = parseServerArguments(args);
  if (typeof command === 'string') throw new Error(`expected a command, got ${command}`);
  return command;
}

describe('nestjs-gearman server: the security and limit flags', () => {
  test('--admin-commands, --job-handles and repeated --admin-certificate, as `--flag value` and `--flag=value`', () => {
    for (const args of [
      ['--admin-commands', 'loopback', '--job-handles', 'sequential', '--admin-certificate', 'ops', '--admin-certificate', 'AB:CD'],
      ['--admin-commands=loopback', '--job-handles=sequential', '--admin-certificate=ops', '--admin-certificate=AB:CD'],
    ]) {
      expect(parsed(args).options).toMatchObject({
        adminCommands: 'loopback',
        jobHandles: 'sequential',
        adminCertificates: ['ops', 'AB:CD'],
      });
    }
    expect(parsed([]).options).toMatchObject({ adminCommands: undefined, jobHandles: undefined, limits: {} });
  });

  test('bad values are usage errors that say what is allowed', () => {
    expect(() => parsed(['--admin-commands', 'root'])).toThrow(
      new UsageError('--admin-commands takes one of read-only, loopback, all, got "root"'),
    );
    expect(() => parsed(['--job-handles=random'])).toThrow(/--job-handles takes one of unguessable, sequential/);
    expect(() => parsed(['--idle-timeout', '5m'])).toThrow(/--idle-timeout takes a number of seconds/);
    expect(() => parsed(['--max-connections=-1'])).toThrow(/--max-connections takes a whole number/);
    expect(() => parsed(['--plaintext-listen', 'localhost'])).toThrow(/--plaintext-listen takes HOST:PORT/);
  });

  test('every limit has its flag: counts and bytes as given, timeouts in seconds (fractions allowed), 0 to turn one off', () => {
    const { limits } = parsed([
      '--output-buffer-soft=1024',
      '--output-buffer-hard',
      '4096',
      '--frames-per-turn',
      '0',
      '--max-queued-per-function',
      '10',
      '--max-queued-per-connection',
      '5',
      '--max-queued-bytes',
      '1000000',
      '--max-connections',
      '100',
      '--max-connections-per-address',
      '10',
      '--idle-timeout',
      '2.5',
      '--packet-timeout=0',
    ]).options;
    expect(limits).toEqual({
      outputBufferSoftBytes: 1024,
      outputBufferHardBytes: 4096,
      framesPerTurn: 0,
      maxQueuedJobsPerFunction: 10,
      maxQueuedJobsPerConnection: 5,
      maxQueuedBytes: 1_000_000,
      maxConnections: 100,
      maxConnectionsPerAddress: 10,
      idleTimeoutMs: 2500,
      packetTimeoutMs: 0,
    });
    expect(parsed(['--no-limits']).options.limits).toEqual(NO_LIMITS);
    // A flag after --no-limits sets that one limit again.
    expect(parsed(['--no-limits', '--max-connections', '50']).options.limits).toEqual({ ...NO_LIMITS, maxConnections: 50 });
  });

  test("TLS: gearmand's --ssl flags read the files; --plaintext-listen adds listeners beside the TLS one", () => {
    expect(() => parsed(['--ssl'])).toThrow(/--ssl needs --ssl-certificate and --ssl-key/);
    expect(() => parsed(['--ssl-key', 'k.pem'])).toThrow(/--ssl-key needs --ssl/);
    expect(() => parsed(['--ssl', '--ssl-certificate', '/nonexistent/c.pem', '--ssl-key', '/nonexistent/k.pem'])).toThrow(
      /--ssl-certificate \/nonexistent\/c\.pem: ENOENT/,
    );
    const options = parsed([
      '-L',
      '0.0.0.0',
      '-p',
      '4730',
      '--plaintext-listen',
      '127.0.0.1:4731',
      '--plaintext-listen=[::1]:4732',
    ]).options;
    expect(options.listeners).toEqual([
      { host: '0.0.0.0', port: 4730, tls: false },
      { host: '127.0.0.1', port: 4731 },
      { host: '::1', port: 4732 },
    ]);
    expect(options.host).toBeUndefined();
  });
});
