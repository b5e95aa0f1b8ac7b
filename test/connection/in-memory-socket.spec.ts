import { once } from 'node:events';
import { FramedSocket, type FramedSocketHandler } from '../../lib/connection/framed-socket.js';
import { InMemorySocket, IN_PROCESS_PEER_ADDRESS } from '../../lib/connection/in-memory-socket.js';
import { connectInProcess, registerInProcessServer } from '../../lib/connection/in-process-servers.js';
import type { FrameTransport } from '../../lib/connection/frame-transport.js';
import { encodeRequest, encodeResponse, type Frame, Magic, PacketType, ProtocolErrorCode } from '../../lib/protocol/index.js';

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

class Recorder implements FramedSocketHandler {
  readonly frames: Frame[] = [];
  readonly protocolErrors: string[] = [];
  readonly closes: (Error | undefined)[] = [];
  drains = 0;
  onFrame(frame: Frame): void {
    this.frames.push(frame);
  }
  onProtocolError(error: { code: string }): void {
    this.protocolErrors.push(error.code);
  }
  onClose(error?: Error): void {
    this.closes.push(error);
  }
  onDrain(): void {
    this.drains++;
  }
}

function received(socket: InMemorySocket): Buffer[] {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return chunks;
}

describe('InMemorySocket', () => {
  test('the client end emits connect on the next tick; the server end names the peer in-process', async () => {
    const { client, server } = InMemorySocket.pair();
    let connected = false;
    client.once('connect', () => (connected = true));
    expect(connected).toBe(false);
    await until(() => connected, 'connect');
    expect(server.remoteAddress).toBe(IN_PROCESS_PEER_ADDRESS);
    client.destroy();
  });

  test('bytes reach the peer in a later turn of the event loop, in order, never during the write', async () => {
    const { client, server } = InMemorySocket.pair();
    const chunks = received(server);
    client.write(Buffer.from('one'));
    client.write(Buffer.from('two'));
    expect(chunks).toEqual([]);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(chunks).toEqual([]); // not in a microtask or nextTick either: timers and I/O run between hops
    await until(() => chunks.length === 2, 'the bytes');
    expect(Buffer.concat(chunks).toString()).toBe('onetwo');
    client.destroy();
  });

  test('write() returns false at the high-water mark; drain follows once the peer has read everything', async () => {
    const { client, server } = InMemorySocket.pair();
    const chunks = received(server);
    let drains = 0;
    client.on('drain', () => drains++);
    expect(client.write(Buffer.alloc(10))).toBe(true);
    expect(client.writableLength).toBe(10);
    expect(client.write(Buffer.alloc(client.writableHighWaterMark))).toBe(false);
    expect(client.writableNeedDrain).toBe(true);
    await until(() => drains === 1, 'drain');
    expect(client.writableLength).toBe(0);
    expect(client.writableNeedDrain).toBe(false);
    expect(Buffer.concat(chunks).length).toBe(10 + client.writableHighWaterMark);
    client.destroy();
  });

  test('a paused end reads nothing, so its peer stays backed up', async () => {
    const { client, server } = InMemorySocket.pair();
    const chunks = received(server);
    server.pause();
    let drains = 0;
    client.on('drain', () => drains++);
    expect(client.write(Buffer.alloc(client.writableHighWaterMark))).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(chunks).toEqual([]);
    expect(drains).toBe(0);
    expect(client.writableNeedDrain).toBe(true);
    client.destroy();
    server.destroy();
  });

  test('resume() after pause() delivers what waited, in order, and the peer drains', async () => {
    const { client, server } = InMemorySocket.pair();
    const chunks = received(server);
    server.pause();
    let drains = 0;
    client.on('drain', () => drains++);
    client.write(Buffer.from('one'));
    client.write(Buffer.alloc(client.writableHighWaterMark));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(chunks).toEqual([]);
    server.resume();
    await until(() => drains === 1, 'drain after resume');
    expect(Buffer.concat(chunks).subarray(0, 3).toString()).toBe('one');
    expect(Buffer.concat(chunks).length).toBe(3 + client.writableHighWaterMark);
    client.destroy();
    server.destroy();
  });

  test('end() closes both ends once each has read what the other wrote', async () => {
    const { client, server } = InMemorySocket.pair();
    const atServer = received(server);
    const atClient = received(client);
    const closed = Promise.all([once(client, 'close'), once(server, 'close')]);
    server.write(Buffer.from('late reply'));
    client.write(Buffer.from('bye'));
    client.end();
    expect(client.write(Buffer.from('too late'))).toBe(false);
    await closed;
    expect(Buffer.concat(atServer).toString()).toBe('bye');
    expect(Buffer.concat(atClient).toString()).toBe('late reply');
    expect(client.destroyed && server.destroyed).toBe(true);
  });

  test('destroy() closes this end at once, with its error, and the peer after it read what it had', async () => {
    const { client, server } = InMemorySocket.pair();
    const atServer = received(server);
    const errors: Error[] = [];
    client.on('error', (error: Error) => errors.push(error));
    // events.once() would reject on the 'error' event: wait for 'close' by hand.
    const closed = Promise.all([client, server].map((end) => new Promise((resolve) => end.once('close', resolve))));
    client.write(Buffer.from('last words'));
    const failure = new Error('gone');
    client.destroy(failure);
    await closed;
    expect(errors).toEqual([failure]);
    expect(Buffer.concat(atServer).toString()).toBe('last words');
  });
});

describe('FramedSocket over an in-memory channel', () => {
  let client: InMemorySocket;
  let server: InMemorySocket;
  let recorder: Recorder;
  let framed: FramedSocket;

  beforeEach(() => {
    ({ client, server } = InMemorySocket.pair());
    recorder = new Recorder();
    framed = new FramedSocket(server, { accept: 'request' }, recorder);
  });
  afterEach(() => {
    client.destroy();
    server.destroy();
  });

  test('decodes packets and admin lines whatever the segmentation', async () => {
    const stream = Buffer.concat([
      encodeRequest(PacketType.SUBMIT_JOB, 'reverse', 'u-1', 'hello'),
      Buffer.from('status\r\n'),
      encodeRequest(PacketType.PRE_SLEEP),
    ]);
    client.write(stream.subarray(0, 5));
    client.write(stream.subarray(5, 30));
    client.write(stream.subarray(30));
    await until(() => recorder.frames.length === 3, 'three frames');
    expect(recorder.frames).toEqual([
      {
        kind: 'packet',
        magic: Magic.REQ,
        type: PacketType.SUBMIT_JOB,
        args: [Buffer.from('reverse'), Buffer.from('u-1'), Buffer.from('hello')],
      },
      { kind: 'admin', line: 'status' },
      { kind: 'packet', magic: Magic.REQ, type: PacketType.PRE_SLEEP, args: [] },
    ]);
  });

  test('writes made within one tick reach the peer as one chunk', async () => {
    const chunks = received(client);
    const packets = [encodeResponse(PacketType.NOOP), encodeResponse(PacketType.JOB_CREATED, 'H:1')];
    for (const packet of packets) framed.write(packet);
    await until(() => chunks.length > 0, 'the batch');
    expect(chunks).toEqual([Buffer.concat(packets)]);
  });

  test('backpressure: write() is false at the mark and onDrain follows when the peer has read, not before', async () => {
    client.pause();
    expect(framed.write(Buffer.alloc(server.writableHighWaterMark))).toBe(false);
    expect(framed.needsDrain).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(recorder.drains).toBe(0); // the peer reads nothing: still backed up
    expect(framed.needsDrain).toBe(true);

    const { client: reader, server: writer } = InMemorySocket.pair();
    const readerChunks = received(reader);
    const drained = new Recorder();
    const framedWriter = new FramedSocket(writer, { accept: 'request' }, drained);
    expect(framedWriter.write(Buffer.alloc(writer.writableHighWaterMark))).toBe(false);
    await until(() => drained.drains === 1, 'onDrain');
    expect(Buffer.concat(readerChunks).length).toBe(writer.writableHighWaterMark);
    reader.destroy();
  });

  test('a protocol error is reported once, and reading stops', async () => {
    client.write(Buffer.concat([encodeRequest(PacketType.GRAB_JOB), encodeResponse(PacketType.NOOP)]));
    await until(() => recorder.protocolErrors.length > 0, 'the protocol error');
    client.write(encodeRequest(PacketType.GRAB_JOB));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(recorder.frames).toHaveLength(1);
    expect(recorder.protocolErrors).toEqual([ProtocolErrorCode.UNEXPECTED_MAGIC]);
    expect(framed.isClosed).toBe(false);
  });

  test('onClose is called once when the peer goes away', async () => {
    client.end();
    await until(() => recorder.closes.length === 1, 'onClose');
    expect(recorder.closes).toEqual([undefined]);
    expect(framed.write(encodeResponse(PacketType.NOOP))).toBe(false);
  });
});

describe('job servers of this process', () => {
  test('a registered address answers connectInProcess (and its loopback names); unregistering stops it', () => {
    const accepted: FrameTransport[] = [];
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    const unregister = registerInProcessServer('127.0.0.1', port, (socket) => accepted.push(socket));
    const direct = connectInProcess('127.0.0.1', port);
    const byName = connectInProcess('LOCALHOST', port);
    expect(direct).toBeInstanceOf(InMemorySocket);
    expect(byName).toBeInstanceOf(InMemorySocket);
    expect(accepted.map((socket) => socket.remoteAddress)).toEqual([IN_PROCESS_PEER_ADDRESS, IN_PROCESS_PEER_ADDRESS]);
    expect(connectInProcess('127.0.0.1', port + 1)).toBeUndefined();
    expect(connectInProcess('10.1.2.3', port)).toBeUndefined();
    unregister();
    expect(connectInProcess('127.0.0.1', port)).toBeUndefined();
    for (const socket of [direct, byName, ...accepted]) socket?.destroy();
  });

  test('a server bound to every interface is reached through the loopback names', () => {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    const unregister = registerInProcessServer('0.0.0.0', port, (socket) => socket.destroy());
    try {
      expect(connectInProcess('127.0.0.1', port)).toBeDefined();
      expect(connectInProcess('localhost', port)).toBeDefined();
      expect(connectInProcess('::1', port)).toBeUndefined(); // bound to IPv4 only
    } finally {
      unregister();
    }
  });
});
