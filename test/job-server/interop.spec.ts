import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { PacketType } from '../../lib/protocol/index.js';
import { describeWithPeers, findExecutable } from '../support/gearmand.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';

/** Runs a command to completion (bounded) and returns its stdout. */
function run(command: string, args: string[], timeoutMs = 10000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Starts a long-running peer; stopped by pid after the test. */
function start(command: string, args: string[]): ChildProcess {
  return spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * Gives each test of the enclosing suite a fresh job server on a free port, and stops the peer
 * processes the test started once it ends.
 */
function jobServerPerTest(): { readonly port: number; startPeer(command: string, args: string[]): void } {
  let server: GearmanJobServer;
  const children: ChildProcess[] = [];
  const context = {
    port: 0,
    startPeer(command: string, args: string[]): void {
      children.push(start(command, args));
    },
  };

  beforeEach(async () => {
    // gearmand's admin rules and H:host:N handles, which these tools and tests expect.
    server = new GearmanJobServer({ port: 0, logger: false, adminCommands: 'all', jobHandles: 'sequential' });
    await server.listen();
    context.port = server.address().port;
  });

  afterEach(async () => {
    await Promise.all(children.splice(0).map(stop));
    await server.close();
  });

  return context;
}

/** Polls the admin `status` row of a function until it matches (bounded). */
async function waitForStatus(port: number, fn: string, expected: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await adminQuery(port, 'status', true);
    if (last.split('\n').includes(`${fn}\t${expected}`)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`status of ${fn} never became ${JSON.stringify(expected)}: ${JSON.stringify(last)}`);
}

describeWithPeers(['gearman', 'gearadmin'], 'GearmanJobServer with the gearman and gearadmin command-line tools', () => {
  const jobServer = jobServerPerTest();
  const gearman = findExecutable('gearman') ?? 'gearman';
  const gearadmin = findExecutable('gearadmin') ?? 'gearadmin';

  test('a `gearman -w` worker serves a `gearman -f` client', async () => {
    jobServer.startPeer(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-w', '-f', 'reverse', '--', 'rev']);
    await waitForStatus(jobServer.port, 'reverse', '0\t0\t1');
    expect(await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-f', 'reverse', 'hello'])).toBe('olleh');
    expect(await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-f', 'reverse', 'abc'])).toBe('cba');
  });

  test('`gearman -b` queues a background job that a later worker runs', async () => {
    await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-b', '-f', 'later', 'payload']);
    await waitForStatus(jobServer.port, 'later', '1\t0\t0');
    expect(await run(gearadmin, ['-h', '127.0.0.1', '-p', String(jobServer.port), '--status'])).toContain('later\t1\t0\t0\n');
    await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-w', '-c', '1', '-f', 'later', '--', 'cat']);
    await waitForStatus(jobServer.port, 'later', '0\t0\t0');
  });

  test('`-I` and `-L` submit at high and low priority', async () => {
    await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-b', '-L', '-f', 'prio', 'low']);
    await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-b', '-f', 'prio', 'normal']);
    await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-b', '-I', '-f', 'prio', 'high']);
    expect((await adminQuery(jobServer.port, 'prioritystatus', true)).split('\n')).toContain('prio\t1\t1\t1\t0');
    const worker = await RawPeer.connect(jobServer.port);
    try {
      worker.send(PacketType.CAN_DO, 'prio');
      const order: string[] = [];
      for (let i = 0; i < 3; i++) {
        worker.send(PacketType.GRAB_JOB);
        order.push((await worker.expect(PacketType.JOB_ASSIGN))[2]);
      }
      expect(order).toEqual(['high', 'normal', 'low']);
    } finally {
      await worker.close();
    }
  });

  test('`-u` gives the unique id: two submits coalesce into one job', async () => {
    await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-b', '-u', 'only-once', '-f', 'uniq', 'a']);
    await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-b', '-u', 'only-once', '-f', 'uniq', 'a']);
    await waitForStatus(jobServer.port, 'uniq', '1\t0\t0');
    expect(await run(gearadmin, ['-h', '127.0.0.1', '-p', String(jobServer.port), '--show-unique-jobs'])).toContain('only-once\n');
  });

  test('gearadmin --workers, --show-jobs, --server-version, --getpid parse our replies', async () => {
    jobServer.startPeer(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-w', '-f', 'listed', '--', 'cat']);
    await waitForStatus(jobServer.port, 'listed', '0\t0\t1');
    expect(await run(gearadmin, ['-h', '127.0.0.1', '-p', String(jobServer.port), '--workers'])).toMatch(/^\d+ 127\.0\.0\.1 - : listed$/m);
    await run(gearman, ['-h', '127.0.0.1', '-p', String(jobServer.port), '-b', '-f', 'queued-only', 'x']);
    expect(await run(gearadmin, ['-h', '127.0.0.1', '-p', String(jobServer.port), '--show-jobs'])).toMatch(/^H:.+:\d+\t0\t0\t1$/m);
    expect((await run(gearadmin, ['-h', '127.0.0.1', '-p', String(jobServer.port), '--server-version'])).trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect((await run(gearadmin, ['-h', '127.0.0.1', '-p', String(jobServer.port), '--getpid'])).trim()).toBe(String(process.pid));
  });
});

describeWithPeers(['perl-gearman'], "GearmanJobServer with Perl's Gearman::Client and Gearman::Worker", () => {
  const jobServer = jobServerPerTest();

  test('a Perl worker serves a Perl client, foreground and background', async () => {
    jobServer.startPeer('perl', [
      '-MGearman::Worker',
      '-e',
      `my $w = Gearman::Worker->new; $w->job_servers('127.0.0.1:${jobServer.port}');
       $w->register_function(perl_reverse => sub { scalar reverse $_[0]->arg });
       $w->register_function(perl_status => sub { $_[0]->set_status(1, 2); uc $_[0]->arg });
       $w->work while 1;`,
    ]);
    await waitForStatus(jobServer.port, 'perl_reverse', '0\t0\t1');
    const client = `use Gearman::Client; my $c = Gearman::Client->new; $c->job_servers('127.0.0.1:${jobServer.port}');`;
    expect(await run('perl', ['-e', `${client} my $r = $c->do_task('perl_reverse', 'gearman'); print $$r;`])).toBe('namraeg');
    expect(await run('perl', ['-e', `${client} my $r = $c->do_task('perl_status', 'shout'); print $$r;`])).toBe('SHOUT');
    const handle = await run('perl', ['-e', `${client} print $c->dispatch_background('perl_reverse', 'bg');`]);
    expect(handle).toMatch(/^127\.0\.0\.1:\d+\/\/H:.+:\d+$/); // Perl prefixes the server
    await waitForStatus(jobServer.port, 'perl_reverse', '0\t0\t1');
  });

  test('a Perl client gets the result of a raw worker and sees its failure', async () => {
    const raw = await RawPeer.connect(jobServer.port);
    try {
      raw.send(PacketType.CAN_DO, 'raw_fn');
      await raw.sync();
      const client = `use Gearman::Client; my $c = Gearman::Client->new; $c->job_servers('127.0.0.1:${jobServer.port}');`;
      const ok = run('perl', ['-e', `${client} my $r = $c->do_task('raw_fn', 'in'); print defined $r ? $$r : 'FAILED';`]);
      raw.send(PacketType.PRE_SLEEP);
      await raw.expect(PacketType.NOOP);
      raw.send(PacketType.GRAB_JOB);
      const [handle, , data] = await raw.expect(PacketType.JOB_ASSIGN);
      expect(data).toBe('in');
      raw.send(PacketType.WORK_COMPLETE, handle, 'out');
      expect(await ok).toBe('out');
      const failed = run('perl', ['-e', `${client} my $r = $c->do_task('raw_fn', 'x'); print defined $r ? $$r : 'FAILED';`]);
      raw.send(PacketType.PRE_SLEEP);
      await raw.expect(PacketType.NOOP);
      raw.send(PacketType.GRAB_JOB);
      const [second] = await raw.expect(PacketType.JOB_ASSIGN);
      raw.send(PacketType.WORK_FAIL, second);
      expect(await failed).toBe('FAILED');
    } finally {
      await raw.close();
    }
  });
});

function hasPhpGearman(): boolean {
  try {
    return execFileSync('php', ['-r', 'echo class_exists("GearmanClient") ? "yes" : "no";'], { encoding: 'utf8' }) === 'yes';
  } catch {
    return false;
  }
}

// The `php` executable alone is not enough: the gearman extension (php-gearman) must be loaded.
const describePhp = hasPhpGearman() ? describe : describe.skip;
if (!hasPhpGearman()) console.warn('skipping PHP interop: needs php with the gearman extension (apt-get install php-gearman)');

describeWithPeers(['php'], 'GearmanJobServer with the PHP gearman extension', () => {
  describePhp('GearmanClient and GearmanWorker', () => {
    const jobServer = jobServerPerTest();

    test('a PHP worker serves a PHP client: normal, high and background jobs, and the status of a handle', async () => {
      jobServer.startPeer('php', [
        '-r',
        `$w = new GearmanWorker(); $w->addServer('127.0.0.1', ${jobServer.port});
         $w->addFunction('php_upper', function ($job) { return strtoupper($job->workload()); });
         while ($w->work());`,
      ]);
      await waitForStatus(jobServer.port, 'php_upper', '0\t0\t1');
      const client = `$c = new GearmanClient(); $c->addServer('127.0.0.1', ${jobServer.port});`;
      expect(await run('php', ['-r', `${client} echo $c->doNormal('php_upper', 'quiet');`])).toBe('QUIET');
      expect(await run('php', ['-r', `${client} echo $c->doHigh('php_upper', 'urgent');`])).toBe('URGENT');
      const handle = await run('php', ['-r', `${client} echo $c->doBackground('php_upper', 'later');`]);
      expect(handle).toMatch(/^H:.+:\d+$/);
      await waitForStatus(jobServer.port, 'php_upper', '0\t0\t1');
      expect(await run('php', ['-r', `${client} echo json_encode($c->jobStatus('${handle}'));`])).toBe('[false,false,0,0]');
    });
  });
});
