import fc from 'fast-check';
import {
  ARGUMENT_LIMITS,
  encodePacket,
  Frame,
  GearmanProtocolError,
  Magic,
  PACKET_SPECS,
  PacketDecoder,
  PacketSpec,
} from '../../lib/protocol/index.js';

const SPECS = PACKET_SPECS.filter((spec): spec is PacketSpec => spec !== undefined && spec.direction !== 'unused');

/** Arbitrary bytes of at most `max` bytes, without NUL unless `nul` (only the last argument may hold one). */
function argument(max: number, nul: boolean): fc.Arbitrary<Buffer> {
  const byte = nul ? fc.integer({ min: 0, max: 255 }) : fc.integer({ min: 1, max: 255 });
  return fc.array(byte, { maxLength: max }).map((bytes) => Buffer.from(bytes));
}

interface PacketValue {
  readonly kind: 'packet';
  readonly magic: Magic;
  readonly type: number;
  readonly args: Buffer[];
}

/** A valid packet of any type: a magic its direction allows, arguments within their limits. */
const packetArbitrary: fc.Arbitrary<PacketValue> = fc.constantFrom(...SPECS).chain((spec) => {
  const magics = spec.direction === 'both' ? [Magic.REQ, Magic.RES] : spec.direction === 'request' ? [Magic.REQ] : [Magic.RES];
  const args = spec.args.map((name, i) => argument(Math.min(ARGUMENT_LIMITS[name] ?? 300, 300), i === spec.args.length - 1));
  return fc.record({
    kind: fc.constant('packet' as const),
    magic: fc.constantFrom(...magics),
    type: fc.constant(spec.type),
    args: fc.tuple(...args),
  });
});

/** An admin line: no newline inside, not starting with NUL, no trailing \r (which the decoder drops). */
const adminLineArbitrary = fc
  .string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '\t', ':', '.', '-', 'é', '漢', '\r', '\0'), maxLength: 60 })
  .filter((line) => !line.startsWith('\0') && !line.endsWith('\r'))
  .map((line) => ({ kind: 'admin' as const, line }));

type FrameValue = PacketValue | { readonly kind: 'admin'; readonly line: string };

function encodeFrame(frame: FrameValue): Buffer {
  return frame.kind === 'packet' ? encodePacket(frame.magic, frame.type, frame.args) : Buffer.from(`${frame.line}\n`, 'utf8');
}

/** Cuts `bytes` at the given offsets (any order, duplicates allowed). */
function cut(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const points = [...new Set(offsets.map((offset) => offset % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    pieces.push(bytes.subarray(start, point));
    start = point;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}

function decodeAll(chunks: readonly Buffer[]): Frame[] {
  const decoder = new PacketDecoder();
  const frames: Frame[] = [];
  for (const chunk of chunks) decoder.feed(chunk, (frame) => frames.push(frame));
  expect(decoder.isAtFrameBoundary).toBe(true);
  expect(decoder.bufferedBytes).toBe(0);
  return frames;
}

describe('codec properties', () => {
  test('any valid packet encodes and decodes back to itself', () => {
    fc.assert(
      fc.property(packetArbitrary, (packet) => {
        expect(decodeAll([encodeFrame(packet)])).toEqual([packet]);
      }),
      { numRuns: 500 },
    );
  });

  test('a stream of packets and admin lines, cut at random offsets, decodes to the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(packetArbitrary, adminLineArbitrary), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, offsets) => {
          const stream = Buffer.concat(frames.map(encodeFrame));
          expect(decodeAll(cut(stream, offsets))).toEqual(frames);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a packet split at every byte offset decodes the same', () => {
    fc.assert(
      fc.property(packetArbitrary, (packet) => {
        const bytes = encodeFrame(packet);
        for (let split = 0; split <= bytes.length; split++) {
          expect(decodeAll([bytes.subarray(0, split), bytes.subarray(split)])).toEqual([packet]);
        }
      }),
      { numRuns: 100 },
    );
  });

  test('random bytes only ever give frames or a GearmanProtocolError, and a failed decoder stays failed', () => {
    // Garbage that often looks like Gearman: magic prefixes, small type codes, short lengths.
    const likely = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.constantFrom(Buffer.from('\0REQ'), Buffer.from('\0RES'), Buffer.from('\0RE'), Buffer.from('\n'), Buffer.from([0, 0, 0])),
      fc.integer({ min: 0, max: 45 }).map((n) => Buffer.from([0, 0, 0, n])),
      fc.integer({ min: 0, max: 40 }).map((n) => Buffer.from([0, 0, 0, n])),
    );
    fc.assert(
      fc.property(fc.array(likely, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (parts, offsets) => {
        const stream = Buffer.concat(parts.map((part) => Buffer.from(part)));
        const decoder = new PacketDecoder({ maxPacketSize: 1024, maxAdminLineLength: 128 });
        let failure: unknown;
        for (const chunk of cut(stream, offsets)) {
          try {
            decoder.feed(chunk, (frame) => {
              expect(failure).toBeUndefined();
              expect(['packet', 'admin']).toContain(frame.kind);
            });
          } catch (error) {
            expect(error).toBeInstanceOf(GearmanProtocolError);
            if (failure !== undefined) expect(error).toBe(failure);
            failure = error;
          }
        }
        if (failure !== undefined) {
          expect(() => decoder.feed(Buffer.from('version\n'), () => undefined)).toThrow(failure as Error);
        }
        expect(decoder.bufferedBytes).toBeLessThanOrEqual(1024 + 128);
      }),
      { numRuns: 2000 },
    );
  });
});
