import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PacketType } from '../../lib/protocol/index.js';
import { adminQuery, RawPeer } from '../job-server/support/raw-peer.js';
import { hasOpenssl, makeTestPki } from '../support/certificates.js';

// `npm test` builds dist/ first; the CLI is tested as users run it.
const MAIN = join(process.cwd(), 'dist/cjs/cli/main.js');

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function launch(args: string[]): { child: ChildProcess; finished: Promise<Finished>; output: () => string } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const finished = new Promise<Finished>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, finished, output: () => stdout };
}

async function listeningPort(output: () => string, timeoutMs = 10000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(output());
    if (match) return Number(match[1]);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`the CLI never said it was listening: ${JSON.stringify(output())}`);
}

describe('nestjs-gearman CLI', () => {
  const running: ChildProcess[] = [];

  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
  });

  afterEach(() => {
    for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  test('`server -p 0` prints one listening line, serves Gearman, and exits 0 on SIGTERM', async () => {
    const { child, finished, output } = launch(['server', '-p', '0', '--job-handle-prefix', 'H:cli']);
    running.push(child);
    const port = await listeningPort(output);
    const peer = await RawPeer.connect(port);
    try {
      peer.send(PacketType.SUBMIT_JOB_BG, 'f', '', 'x');
      expect(await peer.expect(PacketType.JOB_CREATED)).toEqual([expect.stringMatching(/^H:cli:1-[0-9a-f]{16}$/)]);
      expect(await adminQuery(port, 'status', true)).toBe('f\t1\t0\t0\n.\n');
      // gearmand's default level.
      expect(await adminQuery(port, 'verbose', false)).toBe('OK ERROR\n');
    } finally {
      await peer.close();
    }
    child.kill('SIGTERM');
    const result = await finished;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`listening on 127.0.0.1:${port}\n`);
  });

  test('SIGINT closes it cleanly too, with connections open', async () => {
    const { child, finished, output } = launch(['server', '--port', '0', '-L', '127.0.0.1', '-j', '2', '--exceptions', '--keepalive']);
    running.push(child);
    const port = await listeningPort(output);
    const peer = await RawPeer.connect(port);
    child.kill('SIGINT');
    expect((await finished).code).toBe(0);
    expect(await peer.closedByServer()).toBe(true);
  });

  test("gearmand's own command line starts it: flags without effect here are noted, not refused", async () => {
    const pidFile = join(tmpdir(), `nestjs-gearman-${process.pid}-${Date.now()}.pid`);
    const { child, finished, output } = launch([
      'server',
      '--listen',
      '127.0.0.1',
      '--port',
      '0',
      '--log-file',
      'none',
      '--threads',
      '0',
      '-q',
      'builtin',
      '--verbose',
      'INFO',
      '-P',
      pidFile,
    ]);
    running.push(child);
    const port = await listeningPort(output);
    expect(readFileSync(pidFile, 'utf8')).toBe(`${child.pid}\n`);
    expect(await adminQuery(port, 'status', true)).toBe('.\n');
    // The level given, whatever the log file (as gearmand).
    expect(await adminQuery(port, 'verbose', false)).toBe('OK INFO\n');
    child.kill('SIGTERM');
    const result = await finished;
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('note: --threads has no effect on this server\n');
    expect(existsSync(pidFile)).toBe(false);
  });

  test('flags without a command mean `server`', async () => {
    const { child, finished, output } = launch(['-p', '0', '--job-handle-prefix', 'H:bare']);
    running.push(child);
    const port = await listeningPort(output);
    const peer = await RawPeer.connect(port);
    try {
      peer.send(PacketType.SUBMIT_JOB_BG, 'f', '', 'x');
      expect(await peer.expect(PacketType.JOB_CREATED)).toEqual([expect.stringMatching(/^H:bare:1-[0-9a-f]{16}$/)]);
    } finally {
      await peer.close();
    }
    child.kill('SIGTERM');
    expect((await finished).code).toBe(0);
  });

  test('gearmand flags it cannot honour are refused with exit 2', async () => {
    const daemon = await launch(['server', '-d']).finished;
    expect(daemon.code).toBe(2);
    expect(daemon.stderr).toContain('--daemon is not supported by this server');
    const queue = await launch(['server', '--queue-type', 'mysql']).finished;
    expect(queue.code).toBe(2);
    expect(queue.stderr).toContain('--queue-type mysql: this server has builtin (in memory) and libsqlite3');
  });

  test('-V prints the version', async () => {
    const result = await launch(['server', '-V']).finished;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^nestjs-gearman \d+\.\d+\.\d+\n$/);
  });

  test('--help lists every flag and exits 0', async () => {
    const { finished } = launch(['server', '--help']);
    const result = await finished;
    expect(result.code).toBe(0);
    for (const flag of [
      '--port',
      '--listen',
      '--job-retries',
      '--exceptions',
      '--keepalive',
      '--job-handle-prefix',
      '--max-packet-size',
      '--log-file',
      '--pid-file',
      '--version',
      '--help',
    ]) {
      expect(result.stdout).toContain(flag);
    }
  });

  test('a bad flag value or an unknown flag exits 2 with a message', async () => {
    const bad = await launch(['server', '--port', 'many']).finished;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port takes a whole number from 0 to 65535, got "many"');
    const unknown = await launch(['server', '--frobnicate']).finished;
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--frobnicate'/);
  });

  test('no command or an unknown command exits 2 with the usage', async () => {
    const none = await launch([]).finished;
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: nestjs-gearman <command>');
    const unknown = await launch(['serve']).finished;
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command "serve"');
  });

  test('--http-port serves the dashboard and /metrics on a second port, and says where on a second line', async () => {
    const { child, finished, output } = launch(['server', '-p', '0', '--http-port', '0']);
    running.push(child);
    const port = await listeningPort(output);
    const deadline = Date.now() + 10000;
    while (!/\nhttp on http:\/\/127\.0\.0\.1:\d+\/\n$/.test(output()) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const base = /http on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output())![1];
    const state = (await (await fetch(`${base}api/state`)).json()) as {
      actions: boolean;
      servers: { server: string; reachable: boolean }[];
    };
    expect(state).toMatchObject({ actions: false, servers: [{ server: `127.0.0.1:${port}`, reachable: true }] });
    const metrics = await (await fetch(`${base}metrics`)).text();
    expect(metrics).toContain(`gearman_server_up{server="127.0.0.1:${port}"} 1`);
    expect(metrics).toContain('process_resident_memory_bytes');
    expect(metrics).toMatch(/gearman_server_sent_bytes_total [1-9]/);
    child.kill('SIGTERM');
    const result = await finished;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`listening on 127.0.0.1:${port}\nhttp on ${base}\n`);
  });

  test('a port already in use exits 1 with the reason', async () => {
    const first = launch(['server', '-p', '0']);
    running.push(first.child);
    const port = await listeningPort(first.output);
    const second = await launch(['server', '-p', String(port)]).finished;
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('EADDRINUSE');
    first.child.kill('SIGTERM');
    expect((await first.finished).code).toBe(0);
  });

  test("--admin-commands=all and --job-handles=sequential give gearmand's behaviour; the default refuses show jobs", async () => {
    const gearmandLike = launch(['server', '-p', '0', '--admin-commands=all', '--job-handles=sequential', '--job-handle-prefix', 'H:g']);
    const strict = launch(['server', '-p', '0']);
    running.push(gearmandLike.child, strict.child);
    const [open, closed] = [await listeningPort(gearmandLike.output), await listeningPort(strict.output)];
    for (const port of [open, closed]) {
      const peer = await RawPeer.connect(port);
      peer.send(PacketType.SUBMIT_JOB_BG, 'f', '', 'x');
      await peer.expect(PacketType.JOB_CREATED);
      await peer.close();
    }
    expect(await adminQuery(open, 'show jobs', true)).toBe('H:g:1\t0\t0\t1\n.\n');
    expect(await adminQuery(closed, 'show jobs', true)).toMatch(/^ERR PERMISSION_DENIED /);
  });

  (hasOpenssl() || process.env.CI ? test : test.skip)("gearmand's --ssl flags: a TLS port and a plaintext one, a line each", async () => {
    const pki = makeTestPki();
    try {
      const { child, output } = launch([
        'server',
        '-p',
        '0',
        '--ssl',
        `--ssl-certificate=${pki.server.certFile}`,
        '--ssl-key',
        pki.server.keyFile,
        '--ssl-ca-file',
        pki.ca.certFile,
        '--plaintext-listen',
        '127.0.0.1:0',
      ]);
      running.push(child);
      const deadline = Date.now() + 10_000;
      while (output().split('\n').length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const lines = output().trim().split('\n');
      expect(lines).toEqual([
        expect.stringMatching(/^listening on 127\.0\.0\.1:\d+ \(TLS\)$/),
        expect.stringMatching(/^listening on 127\.0\.0\.1:\d+$/),
      ]);
      const plainPort = Number(/:(\d+)$/.exec(lines[1])![1]);
      expect(await adminQuery(plainPort, 'status', true)).toBe('.\n');
      const tlsPort = Number(/:(\d+) /.exec(lines[0])![1]);
      expect(await adminQuery(tlsPort, 'status', false)).toMatch(/^ERR TLS_REQUIRED /);
    } finally {
      pki.remove();
    }
  });
});
