import { execFileSync } from 'node:child_process';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { PacketType } from '../../lib/protocol/packet-types.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { adminCommand } from '../client/support/admin.js';
import { quietLogger } from '../client/support/harness.js';
import { waitFor } from '../client/support/wait.js';
import { describeWithPeers, startGearmand } from '../support/gearmand.js';
import { tempQueueDir } from '../support/queue-files.js';
import { RawPeer } from './support/raw-peer.js';

const files = tempQueueDir('sqlite-server-');
afterAll(() => files.remove());
let fileCount = 0;
const newFile = () => files.file(`server-${++fileCount}.db`);
const sqlite3 = (file: string, sql: string) => execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();

const servers: GearmanJobServer[] = [];
const peers: RawPeer[] = [];
afterEach(async () => {
  for (const peer of peers.splice(0)) await peer.close();
  for (const server of servers.splice(0)) await server.close();
});

async function start(file: string, extra: { storeOnShutdown?: boolean } = {}) {
  // gearmand's handles and admin rules: these tests read the handles and `show unique jobs`.
  const server = new GearmanJobServer({
    port: 0,
    logger: false,
    jobHandlePrefix: 'H:test',
    jobHandles: 'sequential',
    adminCommands: 'all',
    queue: { type: 'sqlite', file, ...extra },
  });
  servers.push(server);
  await server.listen();
  return server;
}
async function peerOf(server: GearmanJobServer) {
  const peer = await RawPeer.connect(server.address().port);
  peers.push(peer);
  return peer;
}
async function stop(server: GearmanJobServer) {
  servers.splice(servers.indexOf(server), 1);
  for (const peer of peers.splice(0)) await peer.close();
  await server.close();
}
/** What a worker gets, in order, until NO_JOB: `unique:data` of each JOB_ASSIGN_UNIQ. */
async function grabAll(peer: RawPeer, fn: string): Promise<string[]> {
  peer.send(PacketType.CAN_DO, fn);
  const seen: string[] = [];
  for (;;) {
    peer.send(PacketType.GRAB_JOB_UNIQ);
    const packet = await peer.next();
    if (packet.type === 'NO_JOB') return seen;
    expect(packet.type).toBe('JOB_ASSIGN_UNIQ');
    seen.push(`${packet.args[2]}:${packet.args[3]}`);
  }
}

describe('GearmanJobServer with the sqlite queue', () => {
  test('background jobs are in the file once JOB_CREATED came; foreground jobs never are', async () => {
    const file = newFile();
    const server = await start(file);
    const client = await peerOf(server);
    client.send(PacketType.SUBMIT_JOB_LOW_BG, 'report', 'r-1', 'low');
    expect(await client.expect(PacketType.JOB_CREATED)).toEqual(['H:test:1']);
    client.send(PacketType.SUBMIT_JOB_EPOCH, 'report', 'r-2', '4102444800', 'in 2100');
    expect(await client.expect(PacketType.JOB_CREATED)).toEqual(['H:test:2']);
    client.send(PacketType.SUBMIT_JOB, 'report', 'fg', 'waits');
    expect(await client.expect(PacketType.JOB_CREATED)).toEqual(['H:test:3']);
    await stop(server);
    expect(
      sqlite3(file, 'SELECT unique_key, function_name, priority, CAST(data AS TEXT), when_to_run FROM gearman_queue ORDER BY rowid'),
    ).toBe('r-1|report|2|low|0\nr-2|report|1|in 2100|4102444800');
  });

  test('a restart replays the queue in priority, then submission order, under the same unique ids', async () => {
    const file = newFile();
    let server = await start(file);
    let client = await peerOf(server);
    const submits: [PacketType, string][] = [
      [PacketType.SUBMIT_JOB_BG, 'n-1'],
      [PacketType.SUBMIT_JOB_LOW_BG, 'l-1'],
      [PacketType.SUBMIT_JOB_HIGH_BG, 'h-1'],
      [PacketType.SUBMIT_JOB_BG, 'n-2'],
      [PacketType.SUBMIT_JOB_HIGH_BG, 'h-2'],
    ];
    for (const [type, unique] of submits) {
      client.send(type, 'work', unique, `data of ${unique}`);
      await client.expect(PacketType.JOB_CREATED);
    }
    await stop(server);
    server = await start(file);
    client = await peerOf(server);
    expect(await grabAll(client, 'work')).toEqual([
      'h-1:data of h-1',
      'h-2:data of h-2',
      'n-1:data of n-1',
      'n-2:data of n-2',
      'l-1:data of l-1',
    ]);
  });

  test('a job leaves the file when it completes, fails, throws or is cancelled; a job still running stays', async () => {
    const file = newFile();
    const server = await start(file);
    const client = await peerOf(server);
    for (const unique of ['done', 'failed', 'threw', 'cancelled', 'running']) {
      client.send(PacketType.SUBMIT_JOB_BG, 'work', unique, unique);
      await client.expect(PacketType.JOB_CREATED);
    }
    const worker = await peerOf(server);
    worker.send(PacketType.CAN_DO, 'work');
    const handles: Record<string, string> = {};
    for (let i = 0; i < 3; i++) {
      worker.send(PacketType.GRAB_JOB_UNIQ);
      const [handle, , unique] = await worker.expect(PacketType.JOB_ASSIGN_UNIQ);
      handles[unique] = handle;
    }
    worker.send(PacketType.WORK_COMPLETE, handles.done, 'ok');
    worker.send(PacketType.WORK_FAIL, handles.failed);
    worker.send(PacketType.WORK_EXCEPTION, handles.threw, 'boom');
    await worker.sync();
    const admin = await peerOf(server);
    admin.sendBytes('cancel job H:test:4\n');
    await waitFor(async () => !(await adminCommand(server.address().port, 'show unique jobs')).includes('cancelled'), 'the cancel');
    // 'running' is taken by a worker and never ends before the server stops.
    worker.send(PacketType.GRAB_JOB_UNIQ);
    expect((await worker.expect(PacketType.JOB_ASSIGN_UNIQ))[2]).toBe('running');
    await stop(server);
    expect(sqlite3(file, 'SELECT unique_key FROM gearman_queue')).toBe('running');
  });

  test('--store-queue-on-shutdown: the whole queue is written at a clean close, and restored', async () => {
    const file = newFile();
    let server = await start(file, { storeOnShutdown: true });
    let client = await peerOf(server);
    client.send(PacketType.SUBMIT_JOB_BG, 'work', 'a', '1');
    await client.expect(PacketType.JOB_CREATED);
    client.send(PacketType.SUBMIT_JOB_HIGH_BG, 'work', 'b', '2');
    await client.expect(PacketType.JOB_CREATED);
    await stop(server);
    expect(sqlite3(file, 'SELECT group_concat(unique_key) FROM gearman_queue')).toBe('a,b');
    server = await start(file, { storeOnShutdown: true });
    client = await peerOf(server);
    expect(await grabAll(client, 'work')).toEqual(['b:2', 'a:1']);
  });

  test('a file that is not a database: listen() rejects naming the file, and nothing listens', async () => {
    const file = newFile();
    execFileSync('sh', ['-c', `printf 'not a database at all%.0s' $(seq 1 100) > ${file}`]);
    const server = new GearmanJobServer({ port: 0, logger: false, queue: { type: 'sqlite', file } });
    await expect(server.listen()).rejects.toThrow(`Job queue file ${file} cannot be opened: it is not a usable SQLite database`);
    expect(() => server.address()).toThrow('not listening');
    await server.close();
  });
});

describeWithPeers(['gearmand'], 'GearmanJobServer and gearmand -q libsqlite3 take over each other’s queue file', () => {
  test('gearmand’s queue, after a SIGKILL, is served by our server in priority order under the same unique ids', async () => {
    const file = newFile();
    const gearmand = await startGearmand(['-q', 'libsqlite3', `--libsqlite3-db=${file}`]);
    try {
      const client = new GearmanClient({ servers: [`127.0.0.1:${gearmand.port}`], logger: quietLogger });
      await client.submitBackgroundJob('handover', 'normal', { unique: 'g-n' });
      await client.submitBackgroundJob('handover', 'low', { unique: 'g-l', priority: 'low' });
      await client.submitBackgroundJob('handover', 'high', { unique: 'g-h', priority: 'high' });
      await client.close();
      gearmand.process.kill('SIGKILL');
    } finally {
      await gearmand.stop();
    }
    const server = await start(file);
    expect(await grabAll(await peerOf(server), 'handover')).toEqual(['g-h:high', 'g-n:normal', 'g-l:low']);
  });

  test('our server’s queue is served by gearmand in priority order', async () => {
    const file = newFile();
    const server = await start(file);
    const client = await peerOf(server);
    for (const [type, unique] of [
      [PacketType.SUBMIT_JOB_LOW_BG, 'o-l'],
      [PacketType.SUBMIT_JOB_BG, 'o-n'],
      [PacketType.SUBMIT_JOB_HIGH_BG, 'o-h'],
    ] as const) {
      client.send(type, 'handback', unique, unique);
      await client.expect(PacketType.JOB_CREATED);
    }
    await stop(server);
    const gearmand = await startGearmand(['-q', 'libsqlite3', `--libsqlite3-db=${file}`]);
    const seen: string[] = [];
    const worker = new GearmanWorker({ servers: [`127.0.0.1:${gearmand.port}`], logger: quietLogger });
    worker.register('handback', (job) => {
      seen.push(job.unique);
    });
    try {
      await worker.start();
      await waitFor(() => seen.length === 3, 'three jobs');
    } finally {
      await worker.stop();
      await gearmand.stop();
    }
    expect(seen).toEqual(['o-h', 'o-n', 'o-l']);
  });
});
