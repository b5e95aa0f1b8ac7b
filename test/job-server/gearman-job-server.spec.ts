import { createServer } from 'node:net';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { collectGarbageReducingMemory } from '../../lib/job-server/memory-release.js';
import { encodeRequest, PacketType } from '../../lib/protocol/index.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';

const P = PacketType;

describe('GearmanJobServer: lifecycle and options', () => {
  const opened: GearmanJobServer[] = [];
  const peers: RawPeer[] = [];

  async function started(options: ConstructorParameters<typeof GearmanJobServer>[0] = {}): Promise<GearmanJobServer> {
    // gearmand's admin rules and handles: these tests read `show jobs` and cancel jobs.
    const server = new GearmanJobServer({ port: 0, logger: false, adminCommands: 'all', jobHandles: 'sequential', ...options });
    opened.push(server);
    await server.listen();
    return server;
  }

  async function peer(server: GearmanJobServer): Promise<RawPeer> {
    const connection = await RawPeer.connect(server.address().port);
    peers.push(connection);
    return connection;
  }

  afterEach(async () => {
    await Promise.all(peers.splice(0).map((connection) => connection.close()));
    await Promise.all(opened.splice(0).map((server) => server.close()));
  });

  test('listens on 127.0.0.1 by default; address() throws before listen and after close', async () => {
    const server = new GearmanJobServer({ port: 0, logger: false });
    opened.push(server);
    expect(() => server.address()).toThrow('not listening');
    await server.listen();
    expect(server.address()).toEqual({ host: '127.0.0.1', port: expect.any(Number) });
    await server.close();
    await server.close();
    expect(() => server.address()).toThrow('not listening');
  });

  test('listen() rejects when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const server = new GearmanJobServer({ port, logger: false });
      await expect(server.listen()).rejects.toThrow(/EADDRINUSE/);
      await server.close();
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test('verbose: the admin `verbose` reply names it; WARNING by default, FATAL when silent; anything else is refused', async () => {
    const named = await started({ verbose: 'DEBUG' });
    expect(await adminQuery(named.address().port, 'verbose', false)).toBe('OK DEBUG\n');
    const silent = await started();
    expect(await adminQuery(silent.address().port, 'verbose', false)).toBe('OK FATAL\n');
    const logged = await started({ logger: { log: () => undefined, warn: () => undefined, error: () => undefined } });
    expect(await adminQuery(logged.address().port, 'verbose', false)).toBe('OK WARNING\n');
    expect(() => new GearmanJobServer({ verbose: 'LOUD' })).toThrow(RangeError);
  });

  test('close() ends every connection and frees the port', async () => {
    const server = await started();
    const { port } = server.address();
    const connection = await peer(server);
    await server.close();
    expect(await connection.closedByServer()).toBe(true);
    const again = new GearmanJobServer({ port, logger: false });
    opened.push(again);
    await again.listen();
    expect(again.address().port).toBe(port);
  });

  test('bad options are refused at construction', () => {
    expect(() => new GearmanJobServer({ port: 70000 })).toThrow(RangeError);
    expect(() => new GearmanJobServer({ jobRetries: -1 })).toThrow(RangeError);
    expect(() => new GearmanJobServer({ maxPacketSize: 0 })).toThrow(RangeError);
    expect(() => new GearmanJobServer({ jobHandlePrefix: 'x'.repeat(60) })).toThrow(RangeError);
  });

  test('jobHandlePrefix names the handles', async () => {
    const server = await started({ jobHandlePrefix: 'H:test-box' });
    const client = await peer(server);
    client.send(P.SUBMIT_JOB_BG, 'f', '', 'x');
    expect(await client.expect(P.JOB_CREATED)).toEqual(['H:test-box:1']);
    client.send(P.SUBMIT_JOB_BG, 'f', '', 'y');
    expect(await client.expect(P.JOB_CREATED)).toEqual(['H:test-box:2']);
  });

  test('exceptions: true relays WORK_EXCEPTION to clients that never asked', async () => {
    const server = await started({ exceptions: true });
    const client = await peer(server);
    client.send(P.SUBMIT_JOB, 'f', '', 'x');
    const [handle] = await client.expect(P.JOB_CREATED);
    const worker = await peer(server);
    worker.send(P.CAN_DO, 'f');
    worker.send(P.GRAB_JOB);
    await worker.expect(P.JOB_ASSIGN);
    worker.send(P.WORK_EXCEPTION, handle, 'bad');
    expect(await client.expect(P.WORK_EXCEPTION)).toEqual([handle, 'bad']);
  });

  test('a packet over maxPacketSize gets ERROR PACKET_TOO_LARGE and the connection closes; others carry on', async () => {
    const server = await started({ maxPacketSize: 1024 });
    const bystander = await peer(server);
    bystander.send(P.SUBMIT_JOB_BG, 'f', '', 'x'.repeat(1000));
    const [handle] = await bystander.expect(P.JOB_CREATED);
    const offender = await peer(server);
    offender.send(P.SUBMIT_JOB_BG, 'f', '', 'x'.repeat(2000));
    expect((await offender.expect(P.ERROR))[0]).toBe('PACKET_TOO_LARGE');
    expect(await offender.closedByServer()).toBe(true);
    bystander.send(P.GET_STATUS, handle);
    expect(await bystander.expect(P.STATUS_RES)).toEqual([handle, '1', '0', '0', '0']);
  });

  test('an unknown packet type gets ERROR UNKNOWN_PACKET_TYPE and the connection closes', async () => {
    const server = await started();
    const offender = await peer(server);
    const header = Buffer.alloc(12);
    header.write('\0REQ', 0, 'latin1');
    header.writeUInt32BE(99, 4);
    offender.sendBytes(header);
    expect((await offender.expect(P.ERROR))[0]).toBe('UNKNOWN_PACKET_TYPE');
    expect(await offender.closedByServer()).toBe(true);
  });

  test('binary packets and admin lines mix on one connection', async () => {
    const server = await started();
    const connection = await peer(server);
    connection.send(P.SUBMIT_JOB_BG, 'mixed', '', 'x');
    await connection.expect(P.JOB_CREATED);
    connection.sendBytes('status\n');
    connection.send(P.ECHO_REQ, 'after');
    expect(await connection.expect(P.ECHO_RES)).toEqual(['after']);
    expect(await adminQuery(server.address().port, 'status', true)).toBe('mixed\t1\t0\t0\n.\n');
  });

  test('a GRAB_JOB read in the same turn as a submit gets the job, whichever of the two is read first', async () => {
    const server = await started();
    const [worker, client] = [await peer(server), await peer(server)];
    worker.send(P.CAN_DO, 'same-turn');
    worker.send(P.ECHO_REQ, 'registered');
    await worker.expect(P.ECHO_RES);
    // Both writes reach the server's sockets before its next poll: one turn reads them both.
    worker.send(P.GRAB_JOB);
    client.send(P.SUBMIT_JOB_BG, 'same-turn', '', 'payload');
    const [handle] = await client.expect(P.JOB_CREATED);
    expect(await worker.expect(P.JOB_ASSIGN)).toEqual([handle, 'same-turn', 'payload']);
  });

  test('a GRAB_JOB that found nothing is answered before the same connection’s next packet', async () => {
    const server = await started();
    const connection = await peer(server);
    connection.sendBytes(
      Buffer.concat([
        encodeRequest(P.CAN_DO, 'next-packet'),
        encodeRequest(P.GRAB_JOB),
        encodeRequest(P.SUBMIT_JOB_BG, 'next-packet', '', 'x'),
        encodeRequest(P.ECHO_REQ, 'last'),
      ]),
    );
    expect((await connection.sync()).map((packet) => packet.type)).toEqual(['NO_JOB', 'JOB_CREATED', 'ECHO_RES']);
  });

  test('cancel job on a running job: the client gets WORK_FAIL at once, the worker result goes nowhere', async () => {
    const server = await started();
    const client = await peer(server);
    client.send(P.SUBMIT_JOB, 'c', '', 'x');
    const [handle] = await client.expect(P.JOB_CREATED);
    const worker = await peer(server);
    worker.send(P.CAN_DO, 'c');
    worker.send(P.GRAB_JOB);
    await worker.expect(P.JOB_ASSIGN);
    expect(await adminQuery(server.address().port, `cancel job ${handle}`, false)).toBe('OK\r\n');
    expect(await client.expect(P.WORK_FAIL)).toEqual([handle]);
    expect(await adminQuery(server.address().port, 'show jobs', true)).toBe(`${handle}\t0\t1\t0\n.\n`);
    worker.send(P.WORK_COMPLETE, handle, 'ignored');
    expect(await client.sync()).toEqual([]);
    expect(await adminQuery(server.address().port, 'show jobs', true)).toBe('.\n');
  });

  test('drop function drops its queued jobs: waiting clients get WORK_FAIL', async () => {
    const server = await started();
    const client = await peer(server);
    client.send(P.SUBMIT_JOB, 'doomed', '', 'x');
    const [handle] = await client.expect(P.JOB_CREATED);
    expect(await adminQuery(server.address().port, 'drop function doomed', false)).toBe('OK\r\n');
    expect(await client.expect(P.WORK_FAIL)).toEqual([handle]);
    expect(await adminQuery(server.address().port, 'status', true)).toBe('.\n');
  });

  test('a worker that gives up a function with CANT_DO gives up its running job of it (requeued)', async () => {
    const server = await started();
    const client = await peer(server);
    client.send(P.SUBMIT_JOB, 'quit', '', 'x');
    const [handle] = await client.expect(P.JOB_CREATED);
    const worker = await peer(server);
    worker.send(P.CAN_DO, 'quit');
    worker.send(P.GRAB_JOB);
    await worker.expect(P.JOB_ASSIGN);
    worker.send(P.CANT_DO, 'quit');
    worker.send(P.WORK_COMPLETE, handle, 'x');
    expect((await worker.expect(P.ERROR))[0]).toBe('JOB_NOT_FOUND');
    expect(await adminQuery(server.address().port, 'show jobs', true)).toBe(`${handle}\t1\t0\t0\n.\n`);
  });

  test('a logger receives warnings about protocol errors', async () => {
    const warnings: string[] = [];
    const server = await started({
      logger: { log: () => undefined, error: () => undefined, warn: (message: string) => warnings.push(message) },
    });
    const offender = await peer(server);
    offender.sendBytes(Buffer.from('\0BAD\0\0\0\x01\0\0\0\0', 'latin1'));
    expect(await offender.closedByServer()).toBe(true);
    expect(warnings.join('\n')).toMatch(/broke the protocol: Bad magic/);
  });

  test('once a large queue has drained and the server idles, it gives the heap back and says so in the log', async () => {
    const logged: string[] = [];
    // The server measures heap growth from where the heap stands when it starts. Garbage left by
    // earlier tests in this jest worker would set that mark high, and V8 collecting it later would
    // hide the growth below, so the heap starts from its live size.
    await collectGarbageReducingMemory();
    const server = await started({
      logger: { log: (message: string) => logged.push(message), error: () => undefined, warn: () => undefined },
    });
    const client = await peer(server);
    const worker = await peer(server);
    // The heap must grow by 64 MiB or more for a release to be worth its pause. Job payloads live
    // outside V8's heap, and this test process's heap may already be large, so objects held until
    // the release make sure of it (about 150 MiB; freed earlier, a collection of V8's own could
    // shrink the heap back before the server's check).
    const held = { objects: Array.from({ length: 1_500_000 }, (_, n) => ({ n, text: `held ${n}` })) };
    const jobs = 5_000;
    for (let i = 0; i < jobs; i++) client.send(P.SUBMIT_JOB_BG, 'bulk', `u-${i}`, 'payload');
    for (let i = 0; i < jobs; i++) await client.expect(P.JOB_CREATED);
    worker.send(P.CAN_DO, 'bulk');
    for (let i = 0; i < jobs; i++) worker.send(P.GRAB_JOB);
    const handles: string[] = [];
    for (let i = 0; i < jobs; i++) handles.push((await worker.expect(P.JOB_ASSIGN))[0]);
    for (const handle of handles) worker.send(P.WORK_COMPLETE, handle, '');
    await worker.sync();
    expect(await adminQuery(server.address().port, 'status', true)).toBe('bulk\t0\t0\t1\n.\n');
    const released = /^a drained queue's memory given back: heap [\d.]+ MiB -> [\d.]+ MiB in \d+ ms$/;
    for (let waited = 0; waited < 15_000 && !logged.some((line) => released.test(line)); waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(held.objects.length).toBe(1_500_000);
    held.objects = [];
    expect(logged).toContainEqual(expect.stringMatching(released));
  }, 60_000);
});
