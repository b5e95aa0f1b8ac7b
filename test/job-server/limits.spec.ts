import { connect, type Socket } from 'node:net';
import { GearmanJobServer, type GearmanJobServerOptions } from '../../lib/job-server/gearman-job-server.js';
import { encodeRequest, PacketDecoder, PacketType } from '../../lib/protocol/index.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';

const P = PacketType;

function recordingLogger(): {
  warnings: string[];
  debugs: string[];
  log(): void;
  warn(m: string): void;
  error(): void;
  debug(m: string): void;
} {
  const warnings: string[] = [];
  const debugs: string[] = [];
  return {
    warnings,
    debugs,
    log: () => undefined,
    warn: (message: string) => warnings.push(message),
    error: () => undefined,
    debug: (message: string) => debugs.push(message),
  };
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A socket that writes ECHO_REQ packets as fast as its buffer takes them and reads nothing, until stopped. */
class Flooder {
  written = 0;
  private stopped = false;
  private constructor(readonly socket: Socket) {
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<Flooder> {
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.pause();
    return new Flooder(socket);
  }

  /** Writes packets while the socket takes them; resolves once it has been backed up for `settleMs` (the peer stopped reading), or after `limit` bytes. */
  async flood(packet: Buffer, limit: number, settleMs = 300): Promise<number> {
    for (;;) {
      while (!this.stopped && this.written < limit && this.socket.write(packet)) this.written += packet.length;
      if (this.stopped || this.written >= limit) return this.written;
      this.written += packet.length;
      const drained = await Promise.race([
        new Promise<boolean>((resolve) => this.socket.once('drain', () => resolve(true))),
        sleep(settleMs).then(() => false),
      ]);
      if (!drained) return this.written;
    }
  }

  /** Reads everything from now on; resolves with the ECHO_RES payloads once `count` arrived. */
  readEchoes(count: number): Promise<string[]> {
    const decoder = new PacketDecoder({ accept: 'response' });
    const seen: string[] = [];
    return new Promise((resolve) => {
      this.socket.on('data', (chunk: Buffer) => {
        decoder.feed(chunk, (frame) => {
          if (frame.kind === 'packet' && frame.type === P.ECHO_RES) seen.push(frame.args[0].toString('latin1'));
        });
        if (seen.length >= count) resolve(seen);
      });
      this.socket.resume();
    });
  }

  close(): void {
    this.stopped = true;
    this.socket.destroy();
  }
}

describe('GearmanJobServer limits, with real sockets', () => {
  const opened: GearmanJobServer[] = [];
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await Promise.all(opened.splice(0).map((server) => server.close()));
  });

  async function started(options: GearmanJobServerOptions): Promise<{ server: GearmanJobServer; port: number }> {
    const server = new GearmanJobServer({ port: 0, logger: false, ...options });
    opened.push(server);
    await server.listen();
    return { server, port: server.address().port };
  }

  async function peer(port: number): Promise<RawPeer> {
    const connection = await RawPeer.connect(port);
    cleanups.push(() => connection.close());
    return connection;
  }

  test('outputBufferSoftBytes: a peer that sends and never reads is no longer read from; once it reads, every reply comes, in order', async () => {
    const { port } = await started({ limits: { outputBufferSoftBytes: 64 * 1024, outputBufferHardBytes: 0 } });
    const flooder = await Flooder.open(port);
    cleanups.push(() => flooder.close());
    const payload = 'e'.repeat(1000);
    // 64 MiB of ECHO_REQ offered: the server stops reading after about 64 KiB of replies, so the
    // kernel buffers on both sides fill and the writes back up long before.
    const written = await flooder.flood(encodeRequest(P.ECHO_REQ, payload), 64 * 1024 * 1024);
    expect(written).toBeLessThan(32 * 1024 * 1024);
    // Meanwhile the others are served.
    const bystander = await peer(port);
    bystander.send(P.ECHO_REQ, 'still here');
    expect(await bystander.expect(P.ECHO_RES)).toEqual(['still here']);
    // Nothing it sent was lost: reading its replies lets the server read on.
    const count = Math.floor(written / encodeRequest(P.ECHO_REQ, payload).length);
    const echoes = await flooder.readEchoes(count);
    expect(echoes.length).toBeGreaterThanOrEqual(count);
    expect(echoes.every((echo) => echo === payload)).toBe(true);
  });

  test('outputBufferHardBytes: a client that reads nothing while a worker streams it results is closed, with a warning', async () => {
    const logger = recordingLogger();
    const { port } = await started({ logger, limits: { outputBufferSoftBytes: 16 * 1024, outputBufferHardBytes: 256 * 1024 } });
    const client = await Flooder.open(port);
    cleanups.push(() => client.close());
    client.socket.write(encodeRequest(P.SUBMIT_JOB, 'stream', '', 'x'));
    const worker = await peer(port);
    worker.send(P.CAN_DO, 'stream');
    worker.send(P.GRAB_JOB);
    const [handle] = await worker.expect(P.JOB_ASSIGN);
    const closed = new Promise((resolve) => client.socket.once('close', resolve));
    const chunk = 'd'.repeat(64 * 1024);
    // Up to 64 MiB of WORK_DATA: the client's socket backs up, the server's buffer for it passes 256 KiB.
    for (let sent = 0; sent < 1024 && logger.warnings.length === 0; sent++) {
      worker.send(P.WORK_DATA, handle, chunk);
      if (sent % 16 === 15) await sleep(5);
    }
    await until(() => logger.warnings.length > 0, 'the warning');
    expect(logger.warnings[0]).toMatch(
      /^connection \d+ \(127\.0\.0\.1\) closed: it left \d+ bytes of replies unread, over outputBufferHardBytes \(262144\)$/,
    );
    // What the client has not read yet is still in its buffers: reading it shows the end.
    client.socket.resume();
    await closed;
    // The worker goes on; its result has nobody to go to.
    worker.send(P.WORK_COMPLETE, handle, 'done');
    expect(await worker.sync()).toEqual([]);
    expect(await adminQuery(port, 'status', true)).toBe('stream\t0\t0\t1\n.\n');
  });

  test('maxConnections: one more gets ERROR TOO_MANY_CONNECTIONS and is closed; a place that frees up is taken again', async () => {
    const logger = recordingLogger();
    const { port } = await started({ logger, limits: { maxConnections: 3 } });
    const first = await peer(port);
    await peer(port);
    await peer(port);
    const refused = await peer(port);
    expect(await refused.expect(P.ERROR)).toEqual([
      'TOO_MANY_CONNECTIONS',
      'The job server has 3 connections open, its limit (maxConnections)',
    ]);
    expect(await refused.closedByServer()).toBe(true);
    expect(logger.warnings.join('\n')).toMatch(
      /refused 1 connection\(s\) \(the last from 127\.0\.0\.1\): The job server has 3 connections open/,
    );
    await first.close();
    await until(async () => {
      const again = await RawPeer.connect(port);
      again.send(P.ECHO_REQ, 'in');
      const packet = await again.next().catch(() => undefined);
      await again.close();
      return packet?.type === 'ECHO_RES';
    }, 'a freed place');
  });

  test('maxConnectionsPerAddress: one address past it is refused; the total is not its business', async () => {
    const { port } = await started({ limits: { maxConnectionsPerAddress: 2 } });
    await peer(port);
    await peer(port);
    const refused = await peer(port);
    expect(await refused.expect(P.ERROR)).toEqual([
      'TOO_MANY_CONNECTIONS',
      '127.0.0.1 has 2 connections open, the limit per address (maxConnectionsPerAddress)',
    ]);
  });

  test('idleTimeoutMs: an idle connection is closed; sleeping workers, clients waiting for a job and workers running one stay', async () => {
    const logger = recordingLogger();
    const { port } = await started({ logger, limits: { idleTimeoutMs: 300 } });
    const idle = await peer(port);
    idle.send(P.ECHO_REQ, 'once');
    await idle.expect(P.ECHO_RES);
    const sleeper = await peer(port);
    sleeper.send(P.CAN_DO, 'nothing-to-do');
    sleeper.send(P.PRE_SLEEP);
    const waiting = await peer(port);
    waiting.send(P.SUBMIT_JOB, 'slow', '', 'x');
    const [handle] = await waiting.expect(P.JOB_CREATED);
    const busy = await peer(port);
    busy.send(P.CAN_DO, 'slow');
    busy.send(P.GRAB_JOB);
    await busy.expect(P.JOB_ASSIGN);
    expect(await idle.closedByServer(3000)).toBe(true);
    expect(logger.debugs.join('\n')).toMatch(/closed: idle for 300 ms \(idleTimeoutMs\)/);
    await sleep(600);
    // The three others are still served.
    for (const connection of [sleeper, waiting, busy]) expect(await connection.sync()).toEqual([]);
    busy.send(P.WORK_COMPLETE, handle, 'done');
    expect(await waiting.expect(P.WORK_COMPLETE)).toEqual([handle, 'done']);
  });

  test('packetTimeoutMs: a packet (or an admin line) that never finishes arriving gets ERROR PACKET_TIMEOUT and the connection closes', async () => {
    const logger = recordingLogger();
    const { port } = await started({ logger, limits: { packetTimeoutMs: 200 } });
    const slow = await peer(port);
    slow.sendBytes(encodeRequest(P.SUBMIT_JOB_BG, 'f', '', 'payload').subarray(0, 15));
    expect(await slow.expect(P.ERROR)).toEqual(['PACKET_TIMEOUT', 'A packet started arriving and was not whole within 200 ms']);
    expect(await slow.closedByServer()).toBe(true);
    const admin = await peer(port);
    admin.sendBytes('stat');
    expect(await admin.closedByServer()).toBe(true);
    expect(logger.warnings.filter((line) => /was not whole within 200 ms \(packetTimeoutMs\)/.test(line))).toHaveLength(2);
    // A packet that keeps arriving, whole each time, is never cut off.
    const steady = await peer(port);
    for (let i = 0; i < 8; i++) {
      steady.send(P.ECHO_REQ, `${i}`);
      await sleep(60);
    }
    expect((await steady.sync()).length).toBe(8);
    expect(await adminQuery(port, 'status', true)).toBe('.\n');
  });

  test('a peer that never reads its replies is closed after idleTimeoutMs, even though reading from it is paused', async () => {
    const logger = recordingLogger();
    const { port } = await started({ logger, limits: { idleTimeoutMs: 300, outputBufferSoftBytes: 16 * 1024, outputBufferHardBytes: 0 } });
    const flooder = await Flooder.open(port);
    cleanups.push(() => flooder.close());
    const closed = new Promise((resolve) => flooder.socket.once('close', resolve));
    await flooder.flood(encodeRequest(P.ECHO_REQ, 'x'.repeat(1000)), 64 * 1024 * 1024);
    await closed;
    expect(logger.warnings.join('\n')).toMatch(/closed: it read none of its \d+ bytes of replies for 300 ms \(idleTimeoutMs\)/);
  });

  test('listening off loopback without TLS logs one warning; on loopback none', async () => {
    const exposed = recordingLogger();
    await started({ host: '0.0.0.0', logger: exposed });
    expect(exposed.warnings).toEqual([expect.stringMatching(/^listening on 0\.0\.0\.0:\d+ without TLS: /)]);
    const local = recordingLogger();
    await started({ logger: local });
    expect(local.warnings).toEqual([]);
  });

  test("every limit off (0) is gearmand's behaviour: nothing refused, nothing closed", async () => {
    const { port } = await started({
      limits: { maxConnections: 0, idleTimeoutMs: 0, packetTimeoutMs: 0, maxQueuedJobsPerFunction: 0, framesPerTurn: 0 },
    });
    const connections = await Promise.all(Array.from({ length: 20 }, () => peer(port)));
    connections[0].sendBytes(encodeRequest(P.ECHO_REQ, 'x').subarray(0, 5));
    await sleep(300);
    connections[1].send(P.ECHO_REQ, 'fine');
    expect(await connections[1].expect(P.ECHO_RES)).toEqual(['fine']);
    expect(await connections[0].closedByServer(100)).toBe(false);
  });
});
