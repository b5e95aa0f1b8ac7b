import { GearmanJobServer, type GearmanJobServerOptions } from '../../lib/job-server/gearman-job-server.js';
import { PacketType } from '../../lib/protocol/index.js';
import { run } from '../client/support/peers.js';
import { describeWithPeers, findExecutable } from '../support/gearmand.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';

const P = PacketType;

/** Every command a read-only peer may not run, with the reply it gets once allowed (the job's handle filled in). */
const PROTECTED: readonly [string, (handle: string) => string, boolean][] = [
  ['show jobs', (handle) => `${handle}\t0\t0\t1\n.\n`, true],
  ['show unique jobs', () => 'secret-unique\n.\n', true],
  ['maxqueue queued 10', () => 'OK\r\n', false],
  ['create function made-up', () => 'OK\r\n', false],
  ['drop function made-up', () => 'OK\r\n', false],
  ['cancel job HANDLE', () => 'OK\r\n', false],
];

describe('admin commands over real sockets, by adminCommands level (every peer here is 127.0.0.1)', () => {
  const opened: GearmanJobServer[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((server) => server.close()));
  });

  /** A server with one background job queued (function `queued`, unique `secret-unique`); its port and the job's handle. */
  async function serverWithJob(options: GearmanJobServerOptions): Promise<{ port: number; handle: string }> {
    const server = new GearmanJobServer({ port: 0, logger: false, ...options });
    opened.push(server);
    await server.listen();
    const port = server.address().port;
    const client = await RawPeer.connect(port);
    client.send(P.SUBMIT_JOB_BG, 'queued', 'secret-unique', 'x');
    const [handle] = await client.expect(P.JOB_CREATED);
    await client.close();
    return { port, handle };
  }

  test('by default (read-only) every protected command is refused with ERR PERMISSION_DENIED and changes nothing', async () => {
    const { port } = await serverWithJob({});
    for (const [line, , listing] of PROTECTED) {
      expect(await adminQuery(port, line.replace('HANDLE', 'H:x:1'), listing)).toMatch(/^ERR PERMISSION_DENIED .*adminCommands/);
    }
    expect(await adminQuery(port, 'status', true)).toBe('queued\t1\t0\t0\n.\n');
    expect(await adminQuery(port, 'prioritystatus', true)).toBe('queued\t0\t1\t0\t0\n.\n');
    expect(await adminQuery(port, 'version', false)).toMatch(/^OK \d/);
  });

  for (const adminCommands of ['all', 'loopback'] as const) {
    test(`${adminCommands}: every protected command runs from 127.0.0.1`, async () => {
      const { port, handle } = await serverWithJob({ adminCommands });
      for (const [line, reply, listing] of PROTECTED) {
        expect(await adminQuery(port, line.replace('HANDLE', handle), listing)).toBe(reply(handle));
      }
      expect(await adminQuery(port, 'status', true)).toBe('queued\t0\t0\t0\n.\n');
    });
  }

  test('GET_STATUS works for whoever holds an unguessable handle; a guessed or altered handle reads as unknown', async () => {
    const { port, handle } = await serverWithJob({});
    expect(handle).toMatch(/^H:.+:1-[0-9a-f]{16}$/);
    const holder = await RawPeer.connect(port);
    try {
      holder.send(P.GET_STATUS, handle);
      expect(await holder.expect(P.STATUS_RES)).toEqual([handle, '1', '0', '0', '0']);
      const prefix = handle.slice(0, handle.lastIndexOf(':') + 1);
      const last = handle.at(-1) === '0' ? '1' : '0';
      for (const guess of [`${prefix}1`, `${handle.slice(0, -1)}${last}`, `${prefix}2${handle.slice(handle.indexOf('-'))}`]) {
        holder.send(P.GET_STATUS, guess);
        expect(await holder.expect(P.STATUS_RES)).toEqual([guess, '0', '0', '0', '0']);
      }
    } finally {
      await holder.close();
    }
  });
});

describeWithPeers(['gearadmin'], 'gearadmin against the adminCommands levels', () => {
  const gearadmin = findExecutable('gearadmin') ?? 'gearadmin';
  const opened: GearmanJobServer[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((server) => server.close()));
  });

  async function server(options: GearmanJobServerOptions): Promise<number> {
    const jobServer = new GearmanJobServer({ port: 0, logger: false, ...options });
    opened.push(jobServer);
    await jobServer.listen();
    const client = await RawPeer.connect(jobServer.address().port);
    client.send(P.SUBMIT_JOB_BG, 'queued', 'u', 'x');
    await client.expect(P.JOB_CREATED);
    await client.close();
    return jobServer.address().port;
  }

  test('read-only: --status and --workers work, --show-jobs and --drop-function print the refusal', async () => {
    const port = await server({});
    const args = ['-h', '127.0.0.1', '-p', String(port)];
    expect((await run(gearadmin, [...args, '--status'])).stdout).toBe('queued\t1\t0\t0\n.\n');
    expect((await run(gearadmin, [...args, '--workers'])).stdout).toMatch(/^\d+ 127\.0\.0\.1 - :/m);
    const shown = await run(gearadmin, [...args, '--show-jobs']);
    expect(`${shown.stdout}${shown.stderr}`).toMatch(/PERMISSION_DENIED/);
    const dropped = await run(gearadmin, [...args, '--drop-function', 'queued']);
    expect(`${dropped.stdout}${dropped.stderr}`).toMatch(/PERMISSION_DENIED/);
    expect((await run(gearadmin, [...args, '--status'])).stdout).toBe('queued\t1\t0\t0\n.\n');
  });

  test('loopback: --show-jobs lists the job and --drop-function drops it, from this machine', async () => {
    const port = await server({ adminCommands: 'loopback' });
    const args = ['-h', '127.0.0.1', '-p', String(port)];
    expect((await run(gearadmin, [...args, '--show-jobs'])).stdout).toMatch(/^H:.+\t0\t0\t1$/m);
    expect((await run(gearadmin, [...args, '--drop-function', 'queued'])).stdout).toMatch(/OK/);
    expect((await run(gearadmin, [...args, '--status'])).stdout).toBe('.\n');
  });
});
