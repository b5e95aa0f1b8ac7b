import { MAX_LOOKUP_BYTES } from '../../lib/job-server/gearmand-limits.js';
import {
  createJobHandles,
  MAX_UNGUESSABLE_PREFIX_BYTES,
  SequentialJobHandles,
  UnguessableJobHandles,
} from '../../lib/job-server/job-handles.js';
import { SipHash64 } from '../../lib/job-server/siphash.js';

describe('SipHash64', () => {
  test('the reference vector of the SipHash paper for an 8-byte message (key 00..0f, message 00..07)', () => {
    const mac = new SipHash64(Uint8Array.from({ length: 16 }, (_, i) => i));
    mac.hash(0x03020100, 0x07060504);
    const bytes = Buffer.alloc(8);
    bytes.writeUInt32LE(mac.low, 0);
    bytes.writeUInt32LE(mac.high, 4);
    expect(bytes.toString('hex')).toBe('6224939a79f5f593');
  });

  test('another key gives another value; a key must be 16 bytes', () => {
    const a = new SipHash64(Buffer.alloc(16, 1));
    const b = new SipHash64(Buffer.alloc(16, 2));
    a.hash(1, 0);
    b.hash(1, 0);
    expect([a.low, a.high]).not.toEqual([b.low, b.high]);
    expect(() => new SipHash64(Buffer.alloc(8))).toThrow(RangeError);
  });
});

describe('job handles', () => {
  test("sequential: gearmand's <prefix>:<counter>, and back; anything else is not ours", () => {
    const handles = new SequentialJobHandles('H:box');
    expect(handles.of(42)).toBe('H:box:42');
    expect(handles.idOf('H:box:42')).toBe(42);
    for (const other of ['H:box:042', 'H:box:', 'H:other:42', 'H:box:4x', 'H:box:-1']) expect(handles.idOf(other)).toBeUndefined();
  });

  test('unguessable: <prefix>:<counter in base 36>-<16 hex digits>, read back to the counter by whoever holds it', () => {
    const handles = new UnguessableJobHandles('H:box', Buffer.alloc(16, 7));
    for (const id of [1, 2, 35, 36, 1_000_000, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const handle = handles.of(id);
      expect(handle).toMatch(new RegExp(`^H:box:${id.toString(36)}-[0-9a-f]{16}$`));
      expect(handles.idOf(handle)).toBe(id);
    }
    expect(handles.of(Number.MAX_SAFE_INTEGER).length).toBe('H:box'.length + MAX_LOOKUP_BYTES - MAX_UNGUESSABLE_PREFIX_BYTES);
  });

  test('unguessable: a counter with a tag that is not its own, an edited tag, or a malformed handle names no job', () => {
    const handles = new UnguessableJobHandles('H:box', Buffer.alloc(16, 7));
    const first = handles.of(1);
    const second = handles.of(2);
    const tag = (handle: string) => handle.slice(handle.indexOf('-') + 1);
    const candidates = [
      `H:box:2-${tag(first)}`, // another job's tag
      `${first.slice(0, -1)}${first.endsWith('0') ? '1' : '0'}`, // one digit changed
      first.toUpperCase().replace('H:BOX', 'H:box'), // upper-case hex
      `H:box:1`, // gearmand's shape
      `H:box:01-${tag(first)}`, // a leading zero
      `H:box:-${tag(first)}`,
      `H:other:1-${tag(first)}`,
      `${first}0`,
      '',
    ];
    for (const candidate of candidates) expect([candidate, handles.idOf(candidate)]).toEqual([candidate, undefined]);
    expect(handles.idOf(second)).toBe(2);
  });

  test("unguessable: each server draws its own key, so one server's handles name nothing on another", () => {
    const one = createJobHandles('unguessable', 'H:box');
    const other = createJobHandles('unguessable', 'H:box');
    expect(one.of(1)).not.toBe(other.of(1));
    expect(other.idOf(one.of(1))).toBeUndefined();
    expect(createJobHandles('sequential', 'H:box').of(1)).toBe('H:box:1');
  });

  test('the longest unguessable handle, with the longest prefix, fits the 63 bytes gearmand reads a handle into', () => {
    const handles = new UnguessableJobHandles('p'.repeat(MAX_UNGUESSABLE_PREFIX_BYTES));
    expect(handles.of(Number.MAX_SAFE_INTEGER).length).toBe(MAX_LOOKUP_BYTES);
  });
});
