import { jest } from '@jest/globals';
import {
  DecoderOptions,
  encodeRequest,
  encodeResponse,
  Frame,
  GearmanProtocolError,
  Magic,
  PacketDecoder,
  PacketType,
  ProtocolErrorCode,
} from '../../lib/protocol/index.js';
import { asBuffer, WIRE_EXAMPLES } from './wire-examples.js';

const hex = (text: string) => Buffer.from(text.replace(/ /g, ''), 'hex');

function decodeChunks(chunks: readonly Buffer[], options?: DecoderOptions): Frame[] {
  const decoder = new PacketDecoder(options);
  const frames: Frame[] = [];
  for (const chunk of chunks) decoder.feed(chunk, (frame) => frames.push(frame));
  return frames;
}

/** Feeds the chunks until one throws; returns that GearmanProtocolError and the frames before it. */
function failingFeed(decoder: PacketDecoder, ...chunks: Buffer[]): { error: GearmanProtocolError; frames: Frame[] } {
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    try {
      decoder.feed(chunk, (frame) => frames.push(frame));
    } catch (error) {
      expect(error).toBeInstanceOf(GearmanProtocolError);
      return { error: error as GearmanProtocolError, frames };
    }
  }
  throw new Error(`expected a GearmanProtocolError, got ${frames.length} frame(s) and no error`);
}

/** A header written by hand: magic (`REQ`/`RES`/anything), type, payload length. */
function header(magic: string, type: number, length: number): Buffer {
  const bytes = Buffer.alloc(12);
  bytes.write(`\0${magic}`, 0, 'latin1');
  bytes.writeUInt32BE(type, 4);
  bytes.writeUInt32BE(length, 8);
  return bytes;
}

describe('PacketDecoder: exact bytes', () => {
  test.each(WIRE_EXAMPLES.map((example) => [PacketType[example.type], example.magic, example] as const))(
    '%s with %s magic',
    (_name, _magic, { magic, type, args, hex: bytes }) => {
      const frames = decodeChunks([Buffer.from(bytes, 'hex')]);
      expect(frames).toEqual([{ kind: 'packet', magic, type, args: args.map(asBuffer) }]);
    },
  );

  test('every example in one chunk, then byte by byte', () => {
    const stream = Buffer.from(WIRE_EXAMPLES.map((example) => example.hex).join(''), 'hex');
    const expected = WIRE_EXAMPLES.map(({ magic, type, args }) => ({ kind: 'packet', magic, type, args: args.map(asBuffer) }));
    expect(decodeChunks([stream])).toEqual(expected);
    const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expect(decodeChunks(bytes)).toEqual(expected);
  });

  test('a packet whole in one chunk is not copied: its arguments view the chunk', () => {
    const chunk = hex('00524553 0000000b 00000007 483a31 00 66 00 64');
    const [frame] = decodeChunks([chunk]);
    if (frame.kind !== 'packet') throw new Error('expected a packet');
    for (const arg of frame.args) expect(arg.buffer).toBe(chunk.buffer);
    expect(frame.args[0].byteOffset).toBe(chunk.byteOffset + 12);
    expect(frame.args[2].byteOffset).toBe(chunk.byteOffset + 18);
  });

  test('a split packet keeps no view of the chunks it came in, so chunks may be reused', () => {
    const decoder = new PacketDecoder();
    const frames: Frame[] = [];
    const first = hex('00524553 00000011 00000004 6162');
    decoder.feed(first, (frame) => frames.push(frame));
    first.fill(0x7a);
    const second = hex('6364 0a');
    decoder.feed(second.subarray(0, 2), (frame) => frames.push(frame));
    second.fill(0x7a, 0, 2);
    decoder.feed(Buffer.from('ver'), (frame) => frames.push(frame));
    decoder.feed(Buffer.from('sion\n'), (frame) => frames.push(frame));
    expect(frames).toEqual([
      { kind: 'packet', magic: Magic.RES, type: PacketType.ECHO_RES, args: [Buffer.from('abcd')] },
      { kind: 'admin', line: 'version' },
    ]);
  });
});

describe('PacketDecoder: admin lines', () => {
  test('lines end at \\n, a trailing \\r is dropped, empty lines count', () => {
    const frames = decodeChunks([Buffer.from('status\r\nversion\n\nshow jobs\r\n')]);
    expect(frames).toEqual([
      { kind: 'admin', line: 'status' },
      { kind: 'admin', line: 'version' },
      { kind: 'admin', line: '' },
      { kind: 'admin', line: 'show jobs' },
    ]);
  });

  test('a line split over chunks, UTF-8 split mid-character', () => {
    const line = Buffer.from('create function é漢\n');
    const chunks = Array.from({ length: line.length }, (_, i) => line.subarray(i, i + 1));
    expect(decodeChunks(chunks)).toEqual([{ kind: 'admin', line: 'create function é漢' }]);
  });

  test('binary packets and admin lines mixed on one connection', () => {
    const stream = Buffer.concat([
      Buffer.from('status\n'),
      encodeRequest(PacketType.ECHO_REQ, 'x'),
      Buffer.from('workers\r\n'),
      encodeRequest(PacketType.GRAB_JOB),
    ]);
    expect(decodeChunks([stream])).toEqual([
      { kind: 'admin', line: 'status' },
      { kind: 'packet', magic: Magic.REQ, type: PacketType.ECHO_REQ, args: [Buffer.from('x')] },
      { kind: 'admin', line: 'workers' },
      { kind: 'packet', magic: Magic.REQ, type: PacketType.GRAB_JOB, args: [] },
    ]);
  });

  test('a partial line is held until its newline; a partial frame shows in bufferedBytes', () => {
    const decoder = new PacketDecoder();
    const frames: Frame[] = [];
    decoder.feed(Buffer.from('vers'), (frame) => frames.push(frame));
    expect(frames).toEqual([]);
    expect(decoder.bufferedBytes).toBe(4);
    expect(decoder.isAtFrameBoundary).toBe(false);
    decoder.feed(Buffer.from('ion\n'), (frame) => frames.push(frame));
    expect(frames).toEqual([{ kind: 'admin', line: 'version' }]);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.isAtFrameBoundary).toBe(true);
  });
});

describe('PacketDecoder: a packet split at every byte offset', () => {
  const packets = [
    encodeRequest(PacketType.SUBMIT_JOB, 'reverse', 'unique-1', 'some data\0with a NUL'),
    encodeResponse(PacketType.NOOP),
    encodeResponse(PacketType.STATUS_RES_UNIQUE, 'u', '1', '0', '3', '4', '2'),
  ];

  test.each(packets.map((packet) => [packet.readUInt32BE(4), packet] as const))('type %i, in two pieces', (_type, packet) => {
    const expected = decodeChunks([packet]);
    expect(expected).toHaveLength(1);
    for (let split = 0; split <= packet.length; split++) {
      expect(decodeChunks([packet.subarray(0, split), packet.subarray(split)])).toEqual(expected);
    }
  });

  test('in three pieces, at every pair of offsets, followed by an admin line', () => {
    const stream = Buffer.concat([packets[0], Buffer.from('version\n')]);
    const expected = decodeChunks([stream]);
    expect(expected).toHaveLength(2);
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b++) {
        const frames = decodeChunks([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]);
        expect(frames).toEqual(expected);
      }
    }
  });
});

describe('PacketDecoder: large payloads', () => {
  const PAYLOAD = 32 * 1024 * 1024;
  const CHUNK = 64 * 1024;

  test('32 MiB in 64 KiB chunks: one payload buffer, one copy, buffered bytes never above the packet', () => {
    const data = Buffer.alloc(PAYLOAD);
    for (let i = 0; i < PAYLOAD; i += 4096) data.writeUInt32BE(i, i); // a pattern that shows any misplaced chunk
    const packet = encodeRequest(PacketType.SUBMIT_JOB, 'resize', 'image-1', data);
    const packetSize = packet.length;

    const decoder = new PacketDecoder({ accept: 'request' });
    const frames: Frame[] = [];
    const allocUnsafe = jest.spyOn(Buffer, 'allocUnsafe');
    const alloc = jest.spyOn(Buffer, 'alloc');
    const concat = jest.spyOn(Buffer, 'concat');
    let previous = 0;
    try {
      for (let offset = 0; offset < packetSize; offset += CHUNK) {
        decoder.feed(packet.subarray(offset, offset + CHUNK), (frame) => frames.push(frame));
        if (frames.length === 0) {
          // Linear: each chunk adds exactly its own bytes, nothing is re-buffered.
          expect(decoder.bufferedBytes).toBe(Math.min(offset + CHUNK, packetSize) - 12);
          expect(decoder.bufferedBytes).toBeGreaterThan(previous);
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(packetSize);
          previous = decoder.bufferedBytes;
        }
      }
      // One allocation for the whole payload, made when the header arrived; no concatenation.
      expect(allocUnsafe.mock.calls).toEqual([[packetSize - 12]]);
      expect(alloc).not.toHaveBeenCalled();
      expect(concat).not.toHaveBeenCalled();
    } finally {
      allocUnsafe.mockRestore();
      alloc.mockRestore();
      concat.mockRestore();
    }

    expect(frames).toHaveLength(1);
    const frame = frames[0];
    if (frame.kind !== 'packet') throw new Error('expected a packet');
    expect(frame.args[0].toString()).toBe('resize');
    expect(frame.args[1].toString()).toBe('image-1');
    expect(frame.args[2].length).toBe(PAYLOAD);
    expect(frame.args[2].equals(data)).toBe(true);
    // The three arguments are views of that one payload buffer.
    expect(frame.args[2].buffer).toBe(frame.args[0].buffer);
    expect(frame.args[2].buffer.byteLength).toBe(packetSize - 12);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.isAtFrameBoundary).toBe(true);
  });
});

describe('PacketDecoder: errors', () => {
  test.each([
    ['\\0REX', header('REX', 16, 0)],
    ['\\0XYZ', header('XYZ', 16, 0)],
    ['\\0req (lower case)', header('req', 16, 0)],
    ['\\0\\0\\0\\0', Buffer.alloc(12)],
  ])('bad magic %s', (_name, bytes) => {
    const { error, frames } = failingFeed(new PacketDecoder(), bytes);
    expect(error.code).toBe(ProtocolErrorCode.BAD_MAGIC);
    expect(frames).toEqual([]);
  });

  test('bad magic is reported as soon as its byte arrives, without waiting for the whole header', () => {
    const decoder = new PacketDecoder();
    decoder.feed(hex('00 52'), () => undefined);
    const { error } = failingFeed(decoder, hex('58'));
    expect(error.code).toBe(ProtocolErrorCode.BAD_MAGIC);
    expect(error.message).toContain('"\\u0000RX"');
  });

  test.each([0, 5, 43, 0xffffffff])('unknown type %i', (type) => {
    const { error } = failingFeed(new PacketDecoder(), header('REQ', type, 0));
    expect(error.code).toBe(ProtocolErrorCode.UNKNOWN_PACKET_TYPE);
    expect(error.packet).toBeUndefined();
    expect(error.message).toContain(String(type));
  });

  test('an unknown type is reported once the type arrives, before the length', () => {
    const decoder = new PacketDecoder();
    const { error } = failingFeed(decoder, header('REQ', 43, 0).subarray(0, 8));
    expect(error.code).toBe(ProtocolErrorCode.UNKNOWN_PACKET_TYPE);
  });

  test('request magic where responses are expected', () => {
    const { error } = failingFeed(new PacketDecoder({ accept: 'response' }), encodeRequest(PacketType.WORK_COMPLETE, 'H:1', 'd'));
    expect(error.code).toBe(ProtocolErrorCode.UNEXPECTED_MAGIC);
    expect(error.message).toBe('Got REQ magic where only responses are expected');
  });

  test('response magic where requests are expected', () => {
    const { error } = failingFeed(new PacketDecoder({ accept: 'request' }), encodeResponse(PacketType.NOOP));
    expect(error.code).toBe(ProtocolErrorCode.UNEXPECTED_MAGIC);
    expect(error.message).toBe('Got RES magic where only requests are expected');
  });

  test.each([
    ['JOB_CREATED', header('REQ', PacketType.JOB_CREATED, 0)],
    ['NOOP', header('REQ', PacketType.NOOP, 0)],
    ['SUBMIT_JOB', header('RES', PacketType.SUBMIT_JOB, 0)],
    ['GRAB_JOB_UNIQ', header('RES', PacketType.GRAB_JOB_UNIQ, 0)],
  ])('%s sent with the wrong magic', (name, bytes) => {
    const { error } = failingFeed(new PacketDecoder(), bytes);
    expect(error.code).toBe(ProtocolErrorCode.UNEXPECTED_MAGIC);
    expect(error.packet).toBe(name);
  });

  test('a payload over maxPacketSize is refused from the header, before any payload arrives', () => {
    const decoder = new PacketDecoder({ maxPacketSize: 1000 });
    const { error } = failingFeed(decoder, header('REQ', PacketType.SUBMIT_JOB, 1001));
    expect(error.code).toBe(ProtocolErrorCode.PACKET_TOO_LARGE);
    expect(error.packet).toBe('SUBMIT_JOB');
    expect(error.message).toBe('SUBMIT_JOB announces 1001 payload bytes, the limit is 1000');
    expect(decoder.bufferedBytes).toBe(0);
  });

  test('a payload of exactly maxPacketSize passes', () => {
    const frames = decodeChunks([encodeResponse(PacketType.ECHO_RES, Buffer.alloc(1000))], { maxPacketSize: 1000 });
    expect(frames).toHaveLength(1);
  });

  test('the default maximum is 64 MiB, checked without allocating', () => {
    const decoder = new PacketDecoder();
    const allocUnsafe = jest.spyOn(Buffer, 'allocUnsafe');
    try {
      const { error } = failingFeed(decoder, header('RES', PacketType.ECHO_RES, 64 * 1024 * 1024 + 1));
      expect(error.code).toBe(ProtocolErrorCode.PACKET_TOO_LARGE);
      expect(allocUnsafe).not.toHaveBeenCalled();
    } finally {
      allocUnsafe.mockRestore();
    }
    const fits = new PacketDecoder({ accept: 'response' });
    fits.feed(header('RES', PacketType.ECHO_RES, 64 * 1024 * 1024), () => undefined);
    expect(fits.isAtFrameBoundary).toBe(false);
  });

  test('an admin line over the limit, with no newline ever arriving', () => {
    const decoder = new PacketDecoder({ maxAdminLineLength: 100 });
    decoder.feed(Buffer.alloc(60, 0x61), () => undefined);
    decoder.feed(Buffer.alloc(40, 0x61), () => undefined); // exactly 100: still waiting
    expect(decoder.bufferedBytes).toBe(100);
    const { error } = failingFeed(decoder, Buffer.from('a'));
    expect(error.code).toBe(ProtocolErrorCode.ADMIN_LINE_TOO_LONG);
    expect(error.message).toBe('Admin line longer than 100 bytes');
    expect(decoder.bufferedBytes).toBe(0);
  });

  test('an admin line over the limit that does end with a newline', () => {
    const { error } = failingFeed(new PacketDecoder({ maxAdminLineLength: 100 }), Buffer.from(`${'a'.repeat(101)}\n`));
    expect(error.code).toBe(ProtocolErrorCode.ADMIN_LINE_TOO_LONG);
    expect(decodeChunks([Buffer.from(`${'a'.repeat(100)}\n`)], { maxAdminLineLength: 100 })).toEqual([
      { kind: 'admin', line: 'a'.repeat(100) },
    ]);
  });

  test('the default admin line limit is 64 KiB', () => {
    const { error } = failingFeed(new PacketDecoder(), Buffer.alloc(64 * 1024 + 1, 0x61));
    expect(error.code).toBe(ProtocolErrorCode.ADMIN_LINE_TOO_LONG);
  });

  test('too few arguments names the packet and the first argument missing', () => {
    const bytes = Buffer.concat([header('REQ', PacketType.SUBMIT_JOB, 3), Buffer.from('f\0u')]);
    const { error } = failingFeed(new PacketDecoder(), bytes);
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_COUNT);
    expect(error.packet).toBe('SUBMIT_JOB');
    expect(error.argument).toBe('data');
  });

  test('too few arguments, the payload arriving in pieces', () => {
    const bytes = Buffer.concat([header('RES', PacketType.STATUS_RES, 7), Buffer.from('H:1\x001\x000')]);
    const { error } = failingFeed(new PacketDecoder(), bytes.subarray(0, 5), bytes.subarray(5, 14), bytes.subarray(14));
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_COUNT);
    expect(error.packet).toBe('STATUS_RES');
    expect(error.argument).toBe('numerator');
  });

  test('a payload on a type that takes no arguments', () => {
    const bytes = Buffer.concat([header('RES', PacketType.NOOP, 1), Buffer.from('x')]);
    const { error } = failingFeed(new PacketDecoder(), bytes);
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_COUNT);
    expect(error.packet).toBe('NOOP');
    expect(error.argument).toBeUndefined();
  });

  test('frames before the error are delivered; after it the decoder stays failed', () => {
    const decoder = new PacketDecoder();
    const good = encodeResponse(PacketType.NOOP);
    const { error, frames } = failingFeed(decoder, Buffer.concat([good, Buffer.from('status\n'), header('REQ', 5, 0), good]));
    expect(frames).toEqual([
      { kind: 'packet', magic: Magic.RES, type: PacketType.NOOP, args: [] },
      { kind: 'admin', line: 'status' },
    ]);
    expect(error.code).toBe(ProtocolErrorCode.UNKNOWN_PACKET_TYPE);
    const onFrame = jest.fn();
    expect(() => decoder.feed(good, onFrame)).toThrow(error);
    expect(() => decoder.feed(Buffer.from('version\n'), onFrame)).toThrow(error);
    expect(onFrame).not.toHaveBeenCalled();
  });

  test("an error thrown by onFrame is the caller's: it propagates as is", () => {
    const decoder = new PacketDecoder();
    const failure = new Error('handler failed');
    expect(() =>
      decoder.feed(encodeResponse(PacketType.NOOP), () => {
        throw failure;
      }),
    ).toThrow(failure);
    const frames: Frame[] = [];
    decoder.feed(Buffer.from('version\n'), (frame) => frames.push(frame));
    expect(frames).toEqual([{ kind: 'admin', line: 'version' }]);
  });
});

describe('PacketDecoder: options', () => {
  test.each([
    [{ maxPacketSize: Number.NaN }, 'maxPacketSize'],
    [{ maxPacketSize: -1 }, 'maxPacketSize'],
    [{ maxPacketSize: 1.5 }, 'maxPacketSize'],
    [{ maxAdminLineLength: Number.POSITIVE_INFINITY }, 'maxAdminLineLength'],
    [{ accept: 'requests' as 'request' }, 'accept'],
    [{ extraPayload: 'drop' as 'ignore' }, 'extraPayload'],
    [{ adminEncoding: 'ascii' as 'latin1' }, 'adminEncoding'],
  ])('%j is refused', (options, name) => {
    expect(() => new PacketDecoder(options)).toThrow(RangeError);
    expect(() => new PacketDecoder(options)).toThrow(name);
  });

  test('a limit of 0 allows only empty payloads', () => {
    expect(decodeChunks([encodeResponse(PacketType.NOOP)], { maxPacketSize: 0 })).toHaveLength(1);
    const { error } = failingFeed(new PacketDecoder({ maxPacketSize: 0 }), encodeResponse(PacketType.ECHO_RES, 'x'));
    expect(error.code).toBe(ProtocolErrorCode.PACKET_TOO_LARGE);
  });

  describe('checkDirection: false (what a job server needs to answer misdirected packets as gearmand does)', () => {
    test.each([
      ['JOB_CREATED', 'REQ', PacketType.JOB_CREATED, ['H:x:1']],
      ['NOOP', 'REQ', PacketType.NOOP, []],
      ['SUBMIT_JOB', 'RES', PacketType.SUBMIT_JOB, ['f', 'u', 'd']],
      ['the unused code 5', 'REQ', PacketType.UNUSED, []],
    ])('%s with %s magic is delivered, its magic as sent', (_name, magic, type, args) => {
      const payload = Buffer.from(args.join('\0'), 'latin1');
      const bytes = Buffer.concat([header(magic, type, payload.length), payload]);
      const frames = decodeChunks([bytes, bytes.subarray(0, 5), bytes.subarray(5)], { checkDirection: false });
      const expected = { kind: 'packet', magic: magic === 'REQ' ? Magic.REQ : Magic.RES, type, args: args.map((arg) => Buffer.from(arg)) };
      expect(frames).toEqual([expected, expected]);
    });

    test.each([0, 43, 0xffff])('type %d is still unknown', (type) => {
      const { error } = failingFeed(new PacketDecoder({ checkDirection: false }), header('REQ', type, 0));
      expect(error.code).toBe(ProtocolErrorCode.UNKNOWN_PACKET_TYPE);
    });

    test('bad magic and the accept option still apply', () => {
      expect(failingFeed(new PacketDecoder({ checkDirection: false }), header('XYZ', 1, 0)).error.code).toBe(ProtocolErrorCode.BAD_MAGIC);
      const { error } = failingFeed(new PacketDecoder({ checkDirection: false, accept: 'request' }), encodeResponse(PacketType.NOOP));
      expect(error.code).toBe(ProtocolErrorCode.UNEXPECTED_MAGIC);
    });
  });

  describe("extraPayload: 'ignore'", () => {
    test('a payload on an argument-less packet is dropped, whole or in pieces, and the next frame is intact', () => {
      const grab = Buffer.concat([header('REQ', PacketType.GRAB_JOB, 4), Buffer.from('junk')]);
      const echo = encodeRequest(PacketType.ECHO_REQ, 'after');
      const expected = [
        { kind: 'packet', magic: Magic.REQ, type: PacketType.GRAB_JOB, args: [] },
        { kind: 'packet', magic: Magic.REQ, type: PacketType.ECHO_REQ, args: [Buffer.from('after')] },
      ];
      const whole = Buffer.concat([grab, echo]);
      expect(decodeChunks([whole], { extraPayload: 'ignore' })).toEqual(expected);
      for (let cut = 1; cut < whole.length; cut++) {
        expect(decodeChunks([whole.subarray(0, cut), whole.subarray(cut)], { extraPayload: 'ignore' })).toEqual(expected);
      }
    });

    test('packets that take arguments are checked as before', () => {
      const bytes = Buffer.concat([header('REQ', PacketType.SUBMIT_JOB, 1), Buffer.from('f')]);
      const { error } = failingFeed(new PacketDecoder({ extraPayload: 'ignore' }), bytes);
      expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_COUNT);
    });
  });

  test("adminEncoding: 'latin1' hands over an admin line one character a byte, bytes that are not UTF-8 included", () => {
    const bytes = Buffer.from([0x73, 0xe9, 0x00, 0xff, 0x0d, 0x0a]);
    expect(decodeChunks([bytes], { adminEncoding: 'latin1' })).toEqual([{ kind: 'admin', line: 's\xe9\0\xff' }]);
    expect(decodeChunks([bytes])).toEqual([{ kind: 'admin', line: 's\ufffd\0\ufffd' }]);
  });
});

describe('PacketDecoder: at most maxFrames frames a feed', () => {
  const stream = Buffer.concat([
    encodeRequest(PacketType.ECHO_REQ, 'a'),
    Buffer.from('status\n'),
    encodeRequest(PacketType.GRAB_JOB),
    encodeRequest(PacketType.ECHO_REQ, 'b'.repeat(100)),
  ]);

  test('stops after maxFrames frames and returns the bytes it consumed; the rest decodes later, whatever the budget', () => {
    for (const budget of [1, 2, 3]) {
      const decoder = new PacketDecoder({ accept: 'request' });
      const frames: Frame[] = [];
      let rest = stream;
      let feeds = 0;
      while (rest.length > 0) {
        const before = frames.length;
        const consumed = decoder.feed(rest, (frame) => frames.push(frame), budget);
        expect(frames.length - before).toBeLessThanOrEqual(budget);
        expect(decoder.isAtFrameBoundary).toBe(true);
        rest = rest.subarray(consumed);
        feeds++;
      }
      expect(frames).toEqual(decodeChunks([stream], { accept: 'request' }));
      expect(feeds).toBe(Math.ceil(4 / budget));
    }
  });

  test('the whole chunk is consumed while the budget lasts, a partial frame included; a spent budget stops before the next frame', () => {
    const decoder = new PacketDecoder({ accept: 'request' });
    const frames: Frame[] = [];
    const cut = stream.length - 10;
    expect(decoder.feed(stream.subarray(0, cut), (frame) => frames.push(frame), 4)).toBe(cut);
    expect(frames).toHaveLength(3);
    expect(decoder.isAtFrameBoundary).toBe(false);
    expect(decoder.feed(stream.subarray(cut), (frame) => frames.push(frame), 4)).toBe(10);
    expect(frames).toHaveLength(4);
    const spent = new PacketDecoder({ accept: 'request' });
    const firstThree = stream.length - encodeRequest(PacketType.ECHO_REQ, 'b'.repeat(100)).length;
    expect(spent.feed(stream.subarray(0, cut), () => undefined, 3)).toBe(firstThree);
    expect(spent.isAtFrameBoundary).toBe(true);
  });
});
