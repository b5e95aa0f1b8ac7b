// The job server's encoder is internal: not part of the nestjs-gearman/protocol entry.
import { encodeByteStringResponse } from '../../lib/protocol/encoder.js';
import {
  encodePacket,
  encodeRequest,
  encodeResponse,
  GearmanProtocolError,
  Magic,
  PACKET_SPECS,
  PacketType,
  ProtocolErrorCode,
} from '../../lib/protocol/index.js';
import { WIRE_EXAMPLES } from './wire-examples.js';

/** Runs `encode` and returns the GearmanProtocolError it throws (failing when it throws nothing or anything else). */
function protocolErrorOf(encode: () => unknown): GearmanProtocolError {
  try {
    encode();
  } catch (error) {
    expect(error).toBeInstanceOf(GearmanProtocolError);
    return error as GearmanProtocolError;
  }
  throw new Error('expected a GearmanProtocolError, nothing was thrown');
}

describe('encodePacket: exact bytes', () => {
  test('the examples cover every packet type but the unused code 5', () => {
    const covered = new Set(WIRE_EXAMPLES.map((example) => example.type));
    const every = PACKET_SPECS.flatMap((spec) => (spec && spec.direction !== 'unused' ? [spec.type] : []));
    expect(every).toHaveLength(41);
    expect([...covered].sort((a, b) => a - b)).toEqual(every);
  });

  test.each(WIRE_EXAMPLES.map((example) => [PacketType[example.type], example.magic, example] as const))(
    '%s with %s magic',
    (_name, _magic, { magic, type, args, hex }) => {
      expect(encodePacket(magic, type, args).toString('hex')).toBe(hex);
      const shortcut = magic === Magic.REQ ? encodeRequest(type, ...args) : encodeResponse(type, ...args);
      expect(shortcut.toString('hex')).toBe(hex);
    },
  );

  test('a payload of 256 bytes and more writes its length big-endian', () => {
    const packet = encodeResponse(PacketType.ECHO_RES, Buffer.alloc(0x10203, 0x61));
    expect(packet.subarray(0, 12).toString('hex')).toBe('00524553' + '00000011' + '00010203');
    expect(packet.length).toBe(12 + 0x10203);
  });

  test('a packet is one buffer holding exactly its bytes', () => {
    const packet = encodeRequest(PacketType.SUBMIT_JOB, 'f', 'u', Buffer.alloc(100_000));
    expect(packet.length).toBe(12 + 1 + 1 + 1 + 1 + 100_000);
    expect(packet.buffer.byteLength).toBe(packet.length);
  });
});

describe('encodePacket: errors', () => {
  const at = (length: number, char = 'a') => char.repeat(length);

  test.each([
    ['unique', PacketType.SUBMIT_JOB, ['f', at(65), 'd'], 'SUBMIT_JOB'],
    ['unique', PacketType.GET_STATUS_UNIQUE, [at(65)], 'GET_STATUS_UNIQUE'],
    ['handle', PacketType.GET_STATUS, [at(65)], 'GET_STATUS'],
    ['handle', PacketType.WORK_COMPLETE, [at(65), 'd'], 'WORK_COMPLETE'],
    ['option', PacketType.OPTION_REQ, [at(65)], 'OPTION_REQ'],
    ['function', PacketType.CAN_DO, [at(513)], 'CAN_DO'],
    ['function', PacketType.SUBMIT_JOB_BG, [at(513), 'u', 'd'], 'SUBMIT_JOB_BG'],
  ] as const)('%s over its limit in %s', (argument, type, args, packet) => {
    const error = protocolErrorOf(() => encodeRequest(type, ...args));
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_TOO_LARGE);
    expect(error.packet).toBe(packet);
    expect(error.argument).toBe(argument);
    expect(error.message).toContain(argument);
  });

  test('limits count UTF-8 bytes, and a value at the limit passes', () => {
    const error = protocolErrorOf(() => encodeRequest(PacketType.SUBMIT_JOB, 'f', at(33, 'é'), 'd')); // 66 bytes
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_TOO_LARGE);
    expect(error.argument).toBe('unique');
    expect(encodeRequest(PacketType.SUBMIT_JOB, 'f', at(32, 'é'), 'd')).toHaveLength(12 + 1 + 64 + 1 + 1 + 1);
    expect(encodeRequest(PacketType.CAN_DO, at(512))).toHaveLength(12 + 512);
    expect(encodeResponse(PacketType.JOB_CREATED, at(64))).toHaveLength(12 + 64);
    expect(encodeResponse(PacketType.OPTION_RES, at(64))).toHaveLength(12 + 64);
  });

  test('a handle over 64 bytes is refused in responses too', () => {
    const error = protocolErrorOf(() => encodeResponse(PacketType.JOB_CREATED, at(65)));
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_TOO_LARGE);
    expect(error.packet).toBe('JOB_CREATED');
    expect(error.argument).toBe('handle');
  });

  test.each([
    ['function', ['f\0g', 'u', 'd']],
    ['unique', ['f', Buffer.from([0x75, 0x00]), 'd']],
  ] as const)('a NUL in %s, not the last argument', (argument, args) => {
    const error = protocolErrorOf(() => encodeRequest(PacketType.SUBMIT_JOB, ...args));
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_CONTAINS_NUL);
    expect(error.packet).toBe('SUBMIT_JOB');
    expect(error.argument).toBe(argument);
  });

  test('a NUL in a STATUS_RES field names that field', () => {
    const error = protocolErrorOf(() => encodeResponse(PacketType.STATUS_RES, 'H:1', '1', '0\0', '1', '2'));
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_CONTAINS_NUL);
    expect(error.argument).toBe('running');
  });

  test('too few arguments names the first one missing', () => {
    const error = protocolErrorOf(() => encodeRequest(PacketType.SUBMIT_JOB, 'f', 'u'));
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_COUNT);
    expect(error.packet).toBe('SUBMIT_JOB');
    expect(error.argument).toBe('data');
    expect(error.message).toBe('SUBMIT_JOB takes 3 argument(s) (function, unique, data), got 2');

    const none = protocolErrorOf(() => encodeRequest(PacketType.CAN_DO));
    expect(none.code).toBe(ProtocolErrorCode.ARGUMENT_COUNT);
    expect(none.argument).toBe('function');
  });

  test('too many arguments names the packet', () => {
    const error = protocolErrorOf(() => encodeResponse(PacketType.NOOP, 'x'));
    expect(error.code).toBe(ProtocolErrorCode.ARGUMENT_COUNT);
    expect(error.packet).toBe('NOOP');
    expect(error.argument).toBeUndefined();
    expect(error.message).toBe('NOOP takes 0 argument(s) (none), got 1');
  });

  test.each([0, 5, 43, 0xffffffff])('unknown type %i', (type) => {
    const error = protocolErrorOf(() => encodePacket(Magic.REQ, type as PacketType, []));
    expect(error.code).toBe(ProtocolErrorCode.UNKNOWN_PACKET_TYPE);
    expect(error.packet).toBeUndefined();
  });

  test.each([
    [Magic.REQ, PacketType.JOB_CREATED, ['H:1']],
    [Magic.REQ, PacketType.NOOP, []],
    [Magic.RES, PacketType.SUBMIT_JOB, ['f', 'u', 'd']],
    [Magic.RES, PacketType.ECHO_REQ, ['d']],
  ] as const)('%s magic refused for %s', (magic, type, args) => {
    const error = protocolErrorOf(() => encodePacket(magic, type, args));
    expect(error.code).toBe(ProtocolErrorCode.UNEXPECTED_MAGIC);
    expect(error.packet).toBe(PacketType[type]);
  });

  test('a magic that is neither REQ nor RES', () => {
    const error = protocolErrorOf(() => encodePacket('XYZ' as Magic, PacketType.NOOP, []));
    expect(error.code).toBe(ProtocolErrorCode.BAD_MAGIC);
  });

  test('the error is an Error with a stable name', () => {
    const error = protocolErrorOf(() => encodeRequest(PacketType.CAN_DO));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('GearmanProtocolError');
  });
});

describe('encodeByteStringResponse: how a job server writes what it keeps and relays', () => {
  const ascii = (example: { args: readonly (string | Buffer)[] }) =>
    example.args.every((arg) => typeof arg === 'string' && /^[\x20-\x7e]*$/.test(arg));

  test.each(
    WIRE_EXAMPLES.filter((example) => example.magic === Magic.RES && ascii(example)).map(
      (example) => [PacketType[example.type], example] as const,
    ),
  )('%s: the same bytes as encodeResponse for ASCII arguments', (_name, { type, args, hex }) => {
    expect(encodeByteStringResponse(type, args).toString('hex')).toBe(hex);
  });

  test('strings are byte strings: each character one byte (latin1), not UTF-8', () => {
    const packet = encodeByteStringResponse(PacketType.JOB_ASSIGN, ['H:1', 'f\xe9', '\xff\x00d']);
    expect(packet.toString('hex')).toBe('00524553' + '0000000b' + '0000000a' + '483a31' + '00' + '66e9' + '00' + 'ff0064');
  });

  test('Buffers and strings mix, and Buffers are copied byte for byte', () => {
    const packet = encodeByteStringResponse(PacketType.WORK_DATA, [Buffer.from('H:1'), Buffer.from([0xc3, 0x00, 0xff])]);
    expect(packet.toString('hex')).toBe('00524553' + '0000001c' + '00000007' + '483a31' + '00' + 'c300ff');
  });

  test('no size limit of libgearman applies: a 8191-byte function name and a long WORK_FAIL argument are written whole', () => {
    const name = 'f'.repeat(8191);
    const assign = encodeByteStringResponse(PacketType.JOB_ASSIGN_UNIQ, ['H:1', name, 'u'.repeat(64), 'd']);
    expect(assign.readUInt32BE(8)).toBe(3 + 1 + 8191 + 1 + 64 + 1 + 1);
    expect(assign.toString('latin1', 12 + 4, 12 + 4 + 8191)).toBe(name);
    const fail = encodeByteStringResponse(PacketType.WORK_FAIL, [`H:1\0${'x'.repeat(100)}`]);
    expect(fail.toString('latin1', 12)).toBe(`H:1\0${'x'.repeat(100)}`);
  });

  test('no argument and an empty last argument', () => {
    expect(encodeByteStringResponse(PacketType.NOOP, []).toString('hex')).toBe('00524553' + '00000006' + '00000000');
    expect(encodeByteStringResponse(PacketType.WORK_COMPLETE, ['H:1', '']).toString('hex')).toBe(
      '00524553' + '0000000d' + '00000004' + '483a31' + '00',
    );
  });

  test('refuses a request type, a wrong argument count, and a NUL in an argument but the last', () => {
    expect(protocolErrorOf(() => encodeByteStringResponse(PacketType.SUBMIT_JOB, ['f', 'u', 'd'])).code).toBe(
      ProtocolErrorCode.UNEXPECTED_MAGIC,
    );
    expect(protocolErrorOf(() => encodeByteStringResponse(PacketType.JOB_ASSIGN, ['H:1', 'f'])).code).toBe(
      ProtocolErrorCode.ARGUMENT_COUNT,
    );
    const nul = protocolErrorOf(() => encodeByteStringResponse(PacketType.JOB_ASSIGN, ['H:1', 'f\0g', 'd']));
    expect([nul.code, nul.packet, nul.argument]).toEqual([ProtocolErrorCode.ARGUMENT_CONTAINS_NUL, 'JOB_ASSIGN', 'function']);
    expect(protocolErrorOf(() => encodeByteStringResponse(PacketType.UNUSED, [])).code).toBe(ProtocolErrorCode.UNEXPECTED_MAGIC);
  });
});
