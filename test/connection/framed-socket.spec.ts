import { once } from 'node:events';
import { AddressInfo, connect, createServer, Socket } from 'node:net';
import { FramedSocket, FramedSocketHandler } from '../../lib/connection/framed-socket.js';
import {
  encodeRequest,
  encodeResponse,
  Frame,
  GearmanProtocolError,
  Magic,
  PacketDecoder,
  PacketType,
  ProtocolErrorCode,
} from '../../lib/protocol/index.js';

/** Two ends of one real loopback TCP connection. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [serverSide] = (await accepted) as [Socket];
  server.close();
  return [serverSide, client];
}

/** Polls until `condition` holds; fails after 5 s. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

class Recorder implements FramedSocketHandler {
  onDrain?: () => void;
  readonly frames: Frame[] = [];
  readonly protocolErrors: GearmanProtocolError[] = [];
  readonly closes: (Error | undefined)[] = [];
  onFrame(frame: Frame): void {
    this.frames.push(frame);
  }
  onProtocolError(error: GearmanProtocolError): void {
    this.protocolErrors.push(error);
  }
  onClose(error?: Error): void {
    this.closes.push(error);
  }
}

/**
 * The turn of the event loop each frame `handler` receives is handled in, until stop(): an
 * immediate that schedules the next one runs once a turn, and counts them.
 */
function recordTurns(handler: Recorder): { readonly ofFrames: number[]; stop(): void } {
  const ofFrames: number[] = [];
  let turn = 0;
  let ticking = true;
  const tick = () => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const original = handler.onFrame.bind(handler);
  handler.onFrame = (frame) => {
    ofFrames.push(turn);
    original(frame);
  };
  return { ofFrames, stop: () => (ticking = false) };
}

describe('FramedSocket over loopback', () => {
  let serverSide: Socket;
  let client: Socket;
  let recorder: Recorder;
  let framed: FramedSocket;

  beforeEach(async () => {
    [serverSide, client] = await socketPair();
    recorder = new Recorder();
    framed = new FramedSocket(serverSide, { accept: 'request' }, recorder);
  });
  afterEach(async () => {
    client.destroy();
    serverSide.destroy();
    if (!serverSide.closed) await once(serverSide, 'close');
  });

  test('decodes packets and admin lines whatever the segmentation', async () => {
    const stream = Buffer.concat([
      encodeRequest(PacketType.SUBMIT_JOB, 'reverse', 'u-1', 'hello'),
      Buffer.from('status\r\n'),
      encodeRequest(PacketType.PRE_SLEEP),
    ]);
    // Written in three pieces, each in its own write.
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
    expect(recorder.protocolErrors).toEqual([]);
  });

  test('writes made within one tick leave as one socket write', async () => {
    const socket = serverSide as Socket & { _writev: (...args: unknown[]) => void; _write: (...args: unknown[]) => void };
    const batches: number[] = [];
    const singles: number[] = [];
    const writev = socket._writev.bind(socket);
    const write = socket._write.bind(socket);
    socket._writev = (chunks: unknown, callback: unknown) => {
      batches.push((chunks as unknown[]).length);
      writev(chunks, callback);
    };
    socket._write = (chunk: unknown, encoding: unknown, callback: unknown) => {
      singles.push(1);
      write(chunk, encoding, callback);
    };

    const packets = [
      encodeResponse(PacketType.NOOP),
      encodeResponse(PacketType.JOB_CREATED, 'H:1'),
      encodeResponse(PacketType.WORK_COMPLETE, 'H:1', 'done'),
    ];
    for (const packet of packets) expect(framed.write(packet)).toBe(true);
    expect(batches).toEqual([]); // nothing leaves during the tick

    const expected = Buffer.concat(packets);
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    await until(() => Buffer.concat(received).length >= expected.length, 'the batch to arrive');
    expect(Buffer.concat(received)).toEqual(expected);
    expect(singles).toEqual([1]);
    expect(batches).toEqual([]);

    // A write in a later tick is a batch of its own.
    framed.write(encodeResponse(PacketType.NO_JOB));
    await until(() => Buffer.concat(received).length >= expected.length + 12, 'the second write');
    expect(batches.length + singles.length).toBe(2);
  });

  test('a batch over 64 KiB goes out as one vector write, not copied', async () => {
    const socket = serverSide as Socket & { _writev: (...args: unknown[]) => void };
    const batches: number[] = [];
    const writev = socket._writev.bind(socket);
    socket._writev = (chunks: unknown, callback: unknown) => {
      batches.push((chunks as unknown[]).length);
      writev(chunks, callback);
    };
    const packets = [0, 1, 2].map((i) => encodeResponse(PacketType.WORK_DATA, `H:${i}`, Buffer.alloc(40 * 1024, i)));
    for (const packet of packets) framed.write(packet);
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    const expected = Buffer.concat(packets);
    await until(() => Buffer.concat(received).length >= expected.length, 'the batch to arrive');
    expect(Buffer.concat(received)).toEqual(expected);
    expect(batches).toEqual([3]);
  });

  test('write() returns false at the high-water mark, and onDrain follows once the bytes left', async () => {
    const drains: number[] = [];
    recorder.onDrain = () => drains.push(Date.now());
    const small = encodeResponse(PacketType.NOOP);
    expect(framed.write(small)).toBe(true);
    expect(framed.needsDrain).toBe(false);
    // Batched but not yet sent: the batch alone reaches the mark.
    expect(framed.write(Buffer.alloc(serverSide.writableHighWaterMark))).toBe(false);
    expect(framed.needsDrain).toBe(true);
    expect(drains).toEqual([]);
    await until(() => drains.length === 1, 'onDrain');
    expect(framed.needsDrain).toBe(false);
    const firstBytes = small.length + serverSide.writableHighWaterMark;
    await until(() => client.readableLength >= firstBytes, 'the first bytes');
    client.read(firstBytes);

    // A peer that does not read: the kernel buffers fill, then the socket's own buffer.
    client.pause();
    const chunk = Buffer.alloc(1024 * 1024);
    let written = 0;
    while (!serverSide.writableNeedDrain) {
      expect(framed.write(chunk)).toBe(false); // each chunk alone reaches the mark
      written++;
      await new Promise((resolve) => setImmediate(resolve));
      if (written > 512) throw new Error('the socket never backed up');
    }
    const drainsBefore = drains.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(drains).toHaveLength(drainsBefore); // still backed up: nobody reads
    expect(framed.needsDrain).toBe(true);
    let receivedBytes = 0;
    client.on('data', (data: Buffer) => (receivedBytes += data.length));
    client.resume();
    await until(() => drains.length === drainsBefore + 1, 'onDrain after the reader resumed');
    const total = written * chunk.length;
    await until(() => receivedBytes >= total, 'every byte');
    expect(receivedBytes).toBe(total);
  });

  test('end() sends what is queued, then closes the write side', async () => {
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    framed.write(encodeResponse(PacketType.ECHO_RES, 'bye'));
    framed.end();
    await once(client, 'end');
    expect(Buffer.concat(received)).toEqual(encodeResponse(PacketType.ECHO_RES, 'bye'));
  });

  test('a protocol error is reported once, and reading stops', async () => {
    client.write(Buffer.concat([encodeRequest(PacketType.GRAB_JOB), encodeResponse(PacketType.NOOP)]));
    await until(() => recorder.protocolErrors.length > 0, 'the protocol error');
    expect(recorder.frames).toEqual([{ kind: 'packet', magic: Magic.REQ, type: PacketType.GRAB_JOB, args: [] }]);
    expect(recorder.protocolErrors).toHaveLength(1);
    expect(recorder.protocolErrors[0].code).toBe(ProtocolErrorCode.UNEXPECTED_MAGIC);
    expect(serverSide.isPaused()).toBe(true);

    // Later bytes arrive at the socket but are no longer decoded.
    client.write(encodeRequest(PacketType.GRAB_JOB));
    await until(() => serverSide.readableLength > 0, 'later bytes to be buffered by the paused socket');
    expect(recorder.frames).toHaveLength(1);
    expect(recorder.protocolErrors).toHaveLength(1);
    expect(framed.isClosed).toBe(false);
  });

  test('onClose is called once when the peer goes away', async () => {
    client.end();
    await once(serverSide, 'end');
    serverSide.destroy();
    await once(serverSide, 'close');
    expect(recorder.closes).toEqual([undefined]);
    expect(framed.isClosed).toBe(true);
    expect(framed.write(encodeResponse(PacketType.NOOP))).toBe(false);
  });

  test('onClose is called once, with the error, when the socket fails', async () => {
    const failure = new Error('broken');
    const closed = new Promise((resolve) => serverSide.once('close', resolve));
    framed.destroy(failure);
    await closed;
    expect(recorder.closes).toEqual([failure]);
  });

  test('maxFramesPerTurn: a burst is handled in slices, one per turn, with the socket paused meanwhile; nothing is lost', async () => {
    const sliced = new Recorder();
    const [server2, client2] = await socketPair();
    try {
      const bounded = new FramedSocket(server2, { accept: 'request', maxFramesPerTurn: 10 }, sliced);
      const turns = recordTurns(sliced);
      // 95 frames of 112 bytes: over the 4 KiB a read may hold to be handled whole.
      const packets = Array.from({ length: 95 }, (_, i) => encodeRequest(PacketType.ECHO_REQ, `n${i}`.padEnd(100, '.')));
      client2.write(Buffer.concat(packets));
      await until(() => sliced.frames.length === 95, 'every frame');
      turns.stop();
      expect(sliced.frames.map((frame) => (frame.kind === 'packet' ? frame.args[0].toString() : ''))).toEqual(
        packets.map((_, i) => `n${i}`.padEnd(100, '.')),
      );
      // No more than 10 frames were handled in any one turn of the event loop.
      const perTurn = new Map<number, number>();
      for (const at of turns.ofFrames) perTurn.set(at, (perTurn.get(at) ?? 0) + 1);
      expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(10);
      expect(perTurn.size).toBeGreaterThanOrEqual(10);
      expect(server2.isPaused()).toBe(false);
      expect(bounded.isReadingPaused).toBe(false);
    } finally {
      client2.destroy();
      server2.destroy();
    }
  });

  test('maxFramesPerTurn: a read of at most 4 KiB is handled whole, in one turn (a client burst keeps together)', async () => {
    const handled = new Recorder();
    const [server2, client2] = await socketPair();
    try {
      new FramedSocket(server2, { accept: 'request', maxFramesPerTurn: 10 }, handled);
      const turns = recordTurns(handled);
      // 95 frames of 14 bytes: 1,330 bytes, written at once.
      client2.write(Buffer.concat(Array.from({ length: 95 }, (_, i) => encodeRequest(PacketType.ECHO_REQ, `n${i}`))));
      await until(() => handled.frames.length === 95, 'every frame');
      turns.stop();
      expect(new Set(turns.ofFrames).size).toBe(1);
    } finally {
      client2.destroy();
      server2.destroy();
    }
  });

  describe('replies to a burst handled in slices', () => {
    /** A FramedSocket answering every ECHO_REQ with its text padded to `replyBytes`, counting its socket writes. */
    async function echoing(replyBytes: number, onFrame?: (framed: FramedSocket, seen: number) => void) {
      const [serverEnd, clientEnd] = await socketPair();
      const counted = serverEnd as Socket & { _writev: (...args: unknown[]) => void; _write: (...args: unknown[]) => void };
      let writes = 0;
      const writev = counted._writev.bind(counted);
      const write = counted._write.bind(counted);
      counted._writev = (...args: unknown[]) => (writes++, writev(...args));
      counted._write = (...args: unknown[]) => (writes++, write(...args));
      let seen = 0;
      const handler = new Recorder();
      const framed: FramedSocket = new FramedSocket(serverEnd, { accept: 'request', maxFramesPerTurn: 10 }, handler);
      handler.onFrame = (frame) => {
        seen++;
        const text = frame.kind === 'packet' ? frame.args[0].toString() : '';
        framed.write(encodeResponse(PacketType.ECHO_RES, text.padEnd(replyBytes - 12, '.')));
        onFrame?.(framed, seen);
      };
      const replies: string[] = [];
      const decoder = new PacketDecoder({ accept: 'response' });
      clientEnd.on('data', (chunk: Buffer) =>
        decoder.feed(chunk, (frame) => replies.push(frame.kind === 'packet' ? frame.args[0].toString().replace(/[-.]+$/, '') : '')),
      );
      const close = () => {
        clientEnd.destroy();
        serverEnd.destroy();
      };
      return { framed, clientEnd, replies, writes: () => writes, close };
    }
    // Requests of 60 bytes: 95 of them are more than a read handled whole (4 KiB).
    const burst = (count: number) =>
      Buffer.concat(Array.from({ length: count }, (_, i) => encodeRequest(PacketType.ECHO_REQ, `n${i}`.padEnd(48, '-'))));
    const names = (count: number) => Array.from({ length: count }, (_, i) => `n${i}`);

    test('are held until the burst is done and leave in one socket write, not one per slice', async () => {
      const peer = await echoing(20);
      try {
        peer.clientEnd.write(burst(95));
        await until(() => peer.replies.length === 95, 'every reply');
        expect(peer.replies).toEqual(names(95));
        expect(peer.writes()).toBe(1);
      } finally {
        peer.close();
      }
    });

    test('leave once 16 KiB are held, so a long burst is answered as it goes', async () => {
      const peer = await echoing(100);
      try {
        peer.clientEnd.write(burst(2000));
        await until(() => peer.replies.length === 2000, 'every reply');
        expect(peer.replies).toEqual(names(2000));
        // 200,000 bytes of replies: a write per 16 KiB held, not one per slice of 10 (200) nor one in all.
        expect(peer.writes()).toBeGreaterThanOrEqual(Math.floor(200_000 / (16 * 1024)));
        expect(peer.writes()).toBeLessThan(40);
      } finally {
        peer.close();
      }
    });

    test('leave at once when the owner pauses reading mid-burst', async () => {
      const peer = await echoing(20, (framed, seen) => {
        if (seen === 25) framed.pauseReading();
      });
      try {
        peer.clientEnd.write(burst(95));
        await until(() => peer.replies.length === 30, 'the replies to the frames handled before the pause');
        await new Promise((resolve) => setTimeout(resolve, 50));
        // The slice that paused ran to its end (frames 21 to 30); nothing more until resumeReading.
        expect(peer.replies).toEqual(names(30));
        peer.framed.resumeReading();
        await until(() => peer.replies.length === 95, 'the rest');
        expect(peer.replies).toEqual(names(95));
      } finally {
        peer.close();
      }
    });
  });

  test('pauseReading stops the frames (what arrives waits), resumeReading hands them over in order', async () => {
    client.write(encodeRequest(PacketType.ECHO_REQ, 'first'));
    await until(() => recorder.frames.length === 1, 'the first frame');
    framed.pauseReading();
    expect(framed.isReadingPaused).toBe(true);
    client.write(encodeRequest(PacketType.ECHO_REQ, 'second'));
    client.write(encodeRequest(PacketType.ECHO_REQ, 'third'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(recorder.frames).toHaveLength(1);
    framed.resumeReading();
    await until(() => recorder.frames.length === 3, 'the frames held back');
    expect(recorder.frames.map((frame) => (frame.kind === 'packet' ? frame.args[0].toString() : ''))).toEqual(['first', 'second', 'third']);
  });

  test('queuedBytes counts the batch and the socket buffer; requestDrain calls onDrain once below the high-water mark', async () => {
    let drains = 0;
    recorder.onDrain = () => drains++;
    expect(framed.queuedBytes).toBe(0);
    framed.write(Buffer.alloc(100));
    expect(framed.queuedBytes).toBe(100);
    framed.requestDrain();
    await until(() => drains === 1, 'onDrain after the flush');
    expect(framed.hasPartialFrame).toBe(false);
    client.write(encodeRequest(PacketType.ECHO_REQ, 'x').subarray(0, 5));
    await until(() => framed.hasPartialFrame, 'a partial frame');
  });
});
