import { createServer, type Server } from 'node:net';
import { runAdminCommand } from '../../lib/job-server/admin-commands.js';
import { JobBroker } from '../../lib/job-server/job-broker.js';
import type { JobLifecycle } from '../../lib/job-server/job-lifecycle.js';
import { ServerConnection } from '../../lib/job-server/server-connection.js';
import { defaultJobServerLimits } from '../../lib/job-server/server-limits.js';
import { PacketType } from '../../lib/protocol/index.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';

const P = PacketType;

/** ServerConnections on a real socket around one broker, as GearmanJobServer wires them, with a lifecycle. */
async function serve(lifecycle: JobLifecycle): Promise<{ port: number; close(): Promise<void> }> {
  const broker = new JobBroker({ handlePrefix: 'H:test', jobHandles: 'sequential', jobRetries: 0, warn: () => undefined, lifecycle });
  const connections = new Set<ServerConnection>();
  let nextId = 1;
  const context = {
    broker,
    exceptions: false,
    maxPacketSize: 1 << 20,
    keepAliveMs: undefined,
    limits: defaultJobServerLimits(),
    readTurns: undefined,
    currentSweep: () => 0,
    runAdmin: (line: string) => runAdminCommand({ broker, version: 'test', verbose: 'FATAL' }, line, 'all'),
    connectionClosed: (con: ServerConnection) => {
      connections.delete(con);
      con.leaveBroker();
    },
    logWarning: () => undefined,
    logError: () => undefined,
    logDebug: () => undefined,
  };
  const server: Server = createServer((socket) => connections.add(new ServerConnection(nextId++, socket, context, 'all')));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    async close() {
      broker.close();
      for (const con of connections) con.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Polls the admin `workers` listing until a row shows the client id (bounded). */
async function clientIdShows(port: number, clientId: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if ((await adminQuery(port, 'workers', true)).includes(` ${clientId} :`)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`client id ${clientId} never showed in workers`);
}

describe('ServerConnection: replies held for a lifecycle that accepts jobs later', () => {
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((close) => close()));
  });

  test('JOB_CREATED waits for the commit, and the replies to later packets wait behind it, in order', async () => {
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    const server = await serve({ accepted: (job) => (job.background ? committed : undefined) });
    closing.push(server.close);
    const client = await RawPeer.connect(server.port);
    closing.push(() => client.close());
    client.send(P.SUBMIT_JOB_BG, 'f', 'u', 'x');
    client.send(P.ECHO_REQ, 'after');
    client.send(P.SUBMIT_JOB, 'f', '', 'y');
    client.send(P.SET_CLIENT_ID, 'marker');
    // The marker shows once every packet before it was handled: their replies exist and are held.
    await clientIdShows(server.port, 'marker');
    commit();
    expect(await client.next()).toEqual({ type: 'JOB_CREATED', args: ['H:test:1'] });
    expect(await client.next()).toEqual({ type: 'ECHO_RES', args: ['after'] });
    expect(await client.next()).toEqual({ type: 'JOB_CREATED', args: ['H:test:2'] });
    client.send(P.ECHO_REQ, 'later');
    expect(await client.next()).toEqual({ type: 'ECHO_RES', args: ['later'] });
  });

  test('a refused job: ERROR QUEUE_ERROR in place of JOB_CREATED, the connection stays, the job is gone', async () => {
    let refuse!: (error: Error) => void;
    const refused = new Promise<void>((_, reject) => (refuse = reject));
    refused.catch(() => undefined);
    const server = await serve({ accepted: () => refused });
    closing.push(server.close);
    const client = await RawPeer.connect(server.port);
    closing.push(() => client.close());
    client.send(P.SUBMIT_JOB_BG, 'f', 'u', 'x');
    client.send(P.ECHO_REQ, 'after');
    refuse(new Error('disk full'));
    expect(await client.next()).toEqual({ type: 'ERROR', args: ['QUEUE_ERROR', 'Job could not be stored'] });
    expect(await client.next()).toEqual({ type: 'ECHO_RES', args: ['after'] });
    expect(await adminQuery(server.port, 'show jobs', true)).toBe('.\n');
  });
});
