import { parseServerArguments, type ServerCommand } from '../../lib/cli/server-command.js';
import { UsageError } from '../../lib/cli/usage-error.js';

const queueOf = (args: string[]) => (parseServerArguments(args) as ServerCommand).options.queue;

describe('server flags for the persistent queue (gearmand’s names)', () => {
  test('-q libsqlite3 with --libsqlite3-db FILE or --libsqlite3-db=FILE', () => {
    expect(queueOf(['-q', 'libsqlite3', '--libsqlite3-db', '/tmp/q.db'])).toEqual({ type: 'sqlite', file: '/tmp/q.db' });
    expect(queueOf(['--queue-type=libsqlite3', '--libsqlite3-db=/tmp/q.db'])).toEqual({ type: 'sqlite', file: '/tmp/q.db' });
    expect(queueOf(['-q', 'LIBSQLITE3', '--libsqlite3-db=/tmp/q.db', '--libsqlite3-table', 'jobs', '--store-queue-on-shutdown'])).toEqual({
      type: 'sqlite',
      file: '/tmp/q.db',
      table: 'jobs',
      storeOnShutdown: true,
    });
    expect(queueOf(['-q', 'libsqlite3', '--libsqlite3-db=/tmp/q.db', '--libsqlite3-table=jobs'])).toEqual({
      type: 'sqlite',
      file: '/tmp/q.db',
      table: 'jobs',
    });
  });

  test('--sqlite-synchronous normal|full (ours, not gearmand’s)', () => {
    expect(queueOf(['-q', 'libsqlite3', '--libsqlite3-db=/q.db', '--sqlite-synchronous', 'full'])).toEqual({
      type: 'sqlite',
      file: '/q.db',
      synchronous: 'full',
    });
    expect(() => parseServerArguments(['-q', 'libsqlite3', '--libsqlite3-db=/q.db', '--sqlite-synchronous=off'])).toThrow(
      '--sqlite-synchronous takes normal or full, got "off"',
    );
    expect(() => parseServerArguments(['--sqlite-synchronous', 'full'])).toThrow('--sqlite-synchronous needs -q libsqlite3');
  });

  test('builtin, or no -q at all, is the memory queue', () => {
    expect(queueOf([])).toBeUndefined();
    expect(queueOf(['-q', 'builtin'])).toBeUndefined();
  });

  test('what cannot work is refused', () => {
    expect(() => parseServerArguments(['-q', 'libsqlite3'])).toThrow(new UsageError('-q libsqlite3 needs --libsqlite3-db FILE'));
    expect(() => parseServerArguments(['--libsqlite3-db', '/tmp/q.db'])).toThrow(new UsageError('--libsqlite3-db needs -q libsqlite3'));
    expect(() => parseServerArguments(['--store-queue-on-shutdown'])).toThrow('--store-queue-on-shutdown needs -q libsqlite3');
    expect(() => parseServerArguments(['-q', 'redis'])).toThrow('--queue-type redis: this server has builtin (in memory) and libsqlite3');
  });
});
