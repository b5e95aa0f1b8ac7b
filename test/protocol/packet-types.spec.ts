import { ARGUMENT_LIMITS, Magic, PACKET_SPECS, PacketType, packetSpec } from '../../lib/protocol/index.js';
import { allowsMagic } from '../../lib/protocol/packet-types.js';

// Transcribed by hand from the packet table of the protocol reference
// (shared/reference/gearman-protocol.md): code, name, who sends it, number of arguments.
// "worker → server → clients" packets travel both ways; code 5 is unused.
const REFERENCE: ReadonlyArray<[number, string, 'request' | 'response' | 'both' | 'unused', number]> = [
  [1, 'CAN_DO', 'request', 1],
  [2, 'CANT_DO', 'request', 1],
  [3, 'RESET_ABILITIES', 'request', 0],
  [4, 'PRE_SLEEP', 'request', 0],
  [5, 'UNUSED', 'unused', 0],
  [6, 'NOOP', 'response', 0],
  [7, 'SUBMIT_JOB', 'request', 3],
  [8, 'JOB_CREATED', 'response', 1],
  [9, 'GRAB_JOB', 'request', 0],
  [10, 'NO_JOB', 'response', 0],
  [11, 'JOB_ASSIGN', 'response', 3],
  [12, 'WORK_STATUS', 'both', 3],
  [13, 'WORK_COMPLETE', 'both', 2],
  [14, 'WORK_FAIL', 'both', 1],
  [15, 'GET_STATUS', 'request', 1],
  [16, 'ECHO_REQ', 'request', 1],
  [17, 'ECHO_RES', 'response', 1],
  [18, 'SUBMIT_JOB_BG', 'request', 3],
  [19, 'ERROR', 'response', 2],
  [20, 'STATUS_RES', 'response', 5],
  [21, 'SUBMIT_JOB_HIGH', 'request', 3],
  [22, 'SET_CLIENT_ID', 'request', 1],
  [23, 'CAN_DO_TIMEOUT', 'request', 2],
  [24, 'ALL_YOURS', 'request', 0],
  [25, 'WORK_EXCEPTION', 'both', 2],
  [26, 'OPTION_REQ', 'request', 1],
  [27, 'OPTION_RES', 'response', 1],
  [28, 'WORK_DATA', 'both', 2],
  [29, 'WORK_WARNING', 'both', 2],
  [30, 'GRAB_JOB_UNIQ', 'request', 0],
  [31, 'JOB_ASSIGN_UNIQ', 'response', 4],
  [32, 'SUBMIT_JOB_HIGH_BG', 'request', 3],
  [33, 'SUBMIT_JOB_LOW', 'request', 3],
  [34, 'SUBMIT_JOB_LOW_BG', 'request', 3],
  [35, 'SUBMIT_JOB_SCHED', 'request', 8],
  [36, 'SUBMIT_JOB_EPOCH', 'request', 4],
  [37, 'SUBMIT_REDUCE_JOB', 'request', 5],
  [38, 'SUBMIT_REDUCE_JOB_BACKGROUND', 'request', 5],
  [39, 'GRAB_JOB_ALL', 'request', 0],
  [40, 'JOB_ASSIGN_ALL', 'response', 5],
  [41, 'GET_STATUS_UNIQUE', 'request', 1],
  [42, 'STATUS_RES_UNIQUE', 'response', 6],
];

describe('packet table', () => {
  test('holds exactly the 42 codes 1..42', () => {
    expect(REFERENCE).toHaveLength(42);
    const codes = PACKET_SPECS.flatMap((spec, index) => (spec ? [index] : []));
    expect(codes).toEqual(REFERENCE.map(([code]) => code));
  });

  test.each(REFERENCE)('code %i is %s, %s, %i argument(s)', (code, name, direction, argumentCount) => {
    const spec = packetSpec(code);
    expect(spec).toBeDefined();
    expect(spec!.type).toBe(code);
    expect(spec!.name).toBe(name);
    expect(PacketType[name as keyof typeof PacketType]).toBe(code);
    expect(spec!.direction).toBe(direction);
    expect(spec!.args).toHaveLength(argumentCount);
  });

  test('codes outside the table have no spec', () => {
    for (const code of [0, 43, 44, 255, 0xffffffff, -1, 1.5]) expect(packetSpec(code)).toBeUndefined();
  });

  test('argument names follow the reference for the packets with several arguments', () => {
    const names = (type: PacketType) => packetSpec(type)!.args;
    expect(names(PacketType.SUBMIT_JOB)).toEqual(['function', 'unique', 'data']);
    expect(names(PacketType.JOB_ASSIGN)).toEqual(['handle', 'function', 'data']);
    expect(names(PacketType.WORK_STATUS)).toEqual(['handle', 'numerator', 'denominator']);
    expect(names(PacketType.ERROR)).toEqual(['code', 'text']);
    expect(names(PacketType.STATUS_RES)).toEqual(['handle', 'known', 'running', 'numerator', 'denominator']);
    expect(names(PacketType.CAN_DO_TIMEOUT)).toEqual(['function', 'timeout']);
    expect(names(PacketType.JOB_ASSIGN_UNIQ)).toEqual(['handle', 'function', 'unique', 'data']);
    expect(names(PacketType.SUBMIT_JOB_SCHED)).toEqual([
      'function',
      'unique',
      'minute',
      'hour',
      'dayOfMonth',
      'month',
      'dayOfWeek',
      'data',
    ]);
    expect(names(PacketType.SUBMIT_JOB_EPOCH)).toEqual(['function', 'unique', 'epoch', 'data']);
    expect(names(PacketType.SUBMIT_REDUCE_JOB)).toEqual(['function', 'unique', 'reducer', 'aggregator', 'data']);
    expect(names(PacketType.JOB_ASSIGN_ALL)).toEqual(['handle', 'function', 'unique', 'reducer', 'data']);
    expect(names(PacketType.STATUS_RES_UNIQUE)).toEqual(['unique', 'known', 'running', 'numerator', 'denominator', 'waiting']);
  });

  test("the fixed limits are gearmand's", () => {
    expect(ARGUMENT_LIMITS).toEqual({ unique: 64, handle: 64, option: 64, function: 512 });
  });

  test('allowsMagic follows the direction', () => {
    const spec = (type: PacketType) => packetSpec(type)!;
    expect(allowsMagic(spec(PacketType.SUBMIT_JOB), Magic.REQ)).toBe(true);
    expect(allowsMagic(spec(PacketType.SUBMIT_JOB), Magic.RES)).toBe(false);
    expect(allowsMagic(spec(PacketType.JOB_CREATED), Magic.RES)).toBe(true);
    expect(allowsMagic(spec(PacketType.JOB_CREATED), Magic.REQ)).toBe(false);
    expect(allowsMagic(spec(PacketType.WORK_COMPLETE), Magic.REQ)).toBe(true);
    expect(allowsMagic(spec(PacketType.WORK_COMPLETE), Magic.RES)).toBe(true);
    expect(allowsMagic(spec(PacketType.UNUSED), Magic.REQ)).toBe(false);
    expect(allowsMagic(spec(PacketType.UNUSED), Magic.RES)).toBe(false);
  });

  test('the table cannot be changed at run time', () => {
    expect(Object.isFrozen(PACKET_SPECS)).toBe(true);
    expect(Object.isFrozen(packetSpec(PacketType.SUBMIT_JOB))).toBe(true);
    expect(Object.isFrozen(packetSpec(PacketType.SUBMIT_JOB)!.args)).toBe(true);
  });
});
