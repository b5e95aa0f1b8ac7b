import { Magic, PacketType } from '../../lib/protocol/index.js';

/**
 * One example of every packet type (both magics for those that travel both ways), with its bytes
 * written out by hand: magic, type, payload length, then the payload, all in hex.
 * ASCII used below: f=66 u=75 d=64 H=48 :=3a 0..9=30..39 E=45 t=74 i=69 x=78 w=77 r=72,
 * "exceptions" = 65 78 63 65 70 74 69 6f 6e 73.
 */
export interface WireExample {
  readonly magic: Magic;
  readonly type: PacketType;
  readonly args: readonly (string | Buffer)[];
  readonly hex: string;
}

const REQ = '00524551';
const RES = '00524553';

function example(magic: Magic, type: PacketType, args: (string | Buffer)[], ...hexParts: string[]): WireExample {
  return { magic, type, args, hex: hexParts.join('') };
}

// Byte tables read best one packet a line.
// prettier-ignore
export const WIRE_EXAMPLES: readonly WireExample[] = [
  example(Magic.REQ, PacketType.CAN_DO, ['f'], REQ, '00000001', '00000001', '66'),
  example(Magic.REQ, PacketType.CANT_DO, ['f'], REQ, '00000002', '00000001', '66'),
  example(Magic.REQ, PacketType.RESET_ABILITIES, [], REQ, '00000003', '00000000'),
  example(Magic.REQ, PacketType.PRE_SLEEP, [], REQ, '00000004', '00000000'),
  example(Magic.RES, PacketType.NOOP, [], RES, '00000006', '00000000'),
  example(Magic.REQ, PacketType.SUBMIT_JOB, ['f', 'u', 'd'], REQ, '00000007', '00000005', '66', '00', '75', '00', '64'),
  example(Magic.RES, PacketType.JOB_CREATED, ['H:1'], RES, '00000008', '00000003', '483a31'),
  example(Magic.REQ, PacketType.GRAB_JOB, [], REQ, '00000009', '00000000'),
  example(Magic.RES, PacketType.NO_JOB, [], RES, '0000000a', '00000000'),
  example(Magic.RES, PacketType.JOB_ASSIGN, ['H:1', 'f', 'd'], RES, '0000000b', '00000007', '483a31', '00', '66', '00', '64'),
  example(Magic.REQ, PacketType.WORK_STATUS, ['H:1', '1', '2'], REQ, '0000000c', '00000007', '483a31', '00', '31', '00', '32'),
  example(Magic.RES, PacketType.WORK_STATUS, ['H:1', '1', '2'], RES, '0000000c', '00000007', '483a31', '00', '31', '00', '32'),
  example(Magic.REQ, PacketType.WORK_COMPLETE, ['H:1', 'd'], REQ, '0000000d', '00000005', '483a31', '00', '64'),
  example(Magic.RES, PacketType.WORK_COMPLETE, ['H:1', 'd'], RES, '0000000d', '00000005', '483a31', '00', '64'),
  example(Magic.REQ, PacketType.WORK_FAIL, ['H:1'], REQ, '0000000e', '00000003', '483a31'),
  example(Magic.RES, PacketType.WORK_FAIL, ['H:1'], RES, '0000000e', '00000003', '483a31'),
  example(Magic.REQ, PacketType.GET_STATUS, ['H:1'], REQ, '0000000f', '00000003', '483a31'),
  // The last argument may hold NUL bytes.
  example(Magic.REQ, PacketType.ECHO_REQ, ['d\0d'], REQ, '00000010', '00000003', '64', '00', '64'),
  example(Magic.RES, PacketType.ECHO_RES, ['d\0d'], RES, '00000011', '00000003', '64', '00', '64'),
  example(Magic.REQ, PacketType.SUBMIT_JOB_BG, ['f', 'u', 'd'], REQ, '00000012', '00000005', '66', '00', '75', '00', '64'),
  example(Magic.RES, PacketType.ERROR, ['E', 't'], RES, '00000013', '00000003', '45', '00', '74'),
  example(Magic.RES, PacketType.STATUS_RES, ['H:1', '1', '0', '1', '2'], RES, '00000014', '0000000b',
    '483a31', '00', '31', '00', '30', '00', '31', '00', '32'),
  example(Magic.REQ, PacketType.SUBMIT_JOB_HIGH, ['f', 'u', 'd'], REQ, '00000015', '00000005', '66', '00', '75', '00', '64'),
  example(Magic.REQ, PacketType.SET_CLIENT_ID, ['i'], REQ, '00000016', '00000001', '69'),
  example(Magic.REQ, PacketType.CAN_DO_TIMEOUT, ['f', '5'], REQ, '00000017', '00000003', '66', '00', '35'),
  example(Magic.REQ, PacketType.ALL_YOURS, [], REQ, '00000018', '00000000'),
  example(Magic.REQ, PacketType.WORK_EXCEPTION, ['H:1', 'x'], REQ, '00000019', '00000005', '483a31', '00', '78'),
  example(Magic.RES, PacketType.WORK_EXCEPTION, ['H:1', 'x'], RES, '00000019', '00000005', '483a31', '00', '78'),
  example(Magic.REQ, PacketType.OPTION_REQ, ['exceptions'], REQ, '0000001a', '0000000a', '657863657074696f6e73'),
  example(Magic.RES, PacketType.OPTION_RES, ['exceptions'], RES, '0000001b', '0000000a', '657863657074696f6e73'),
  example(Magic.REQ, PacketType.WORK_DATA, ['H:1', 'd'], REQ, '0000001c', '00000005', '483a31', '00', '64'),
  example(Magic.RES, PacketType.WORK_DATA, ['H:1', 'd'], RES, '0000001c', '00000005', '483a31', '00', '64'),
  example(Magic.REQ, PacketType.WORK_WARNING, ['H:1', 'w'], REQ, '0000001d', '00000005', '483a31', '00', '77'),
  example(Magic.RES, PacketType.WORK_WARNING, ['H:1', 'w'], RES, '0000001d', '00000005', '483a31', '00', '77'),
  example(Magic.REQ, PacketType.GRAB_JOB_UNIQ, [], REQ, '0000001e', '00000000'),
  example(Magic.RES, PacketType.JOB_ASSIGN_UNIQ, ['H:1', 'f', 'u', 'd'], RES, '0000001f', '00000009',
    '483a31', '00', '66', '00', '75', '00', '64'),
  example(Magic.REQ, PacketType.SUBMIT_JOB_HIGH_BG, ['f', 'u', 'd'], REQ, '00000020', '00000005', '66', '00', '75', '00', '64'),
  example(Magic.REQ, PacketType.SUBMIT_JOB_LOW, ['f', 'u', 'd'], REQ, '00000021', '00000005', '66', '00', '75', '00', '64'),
  example(Magic.REQ, PacketType.SUBMIT_JOB_LOW_BG, ['f', 'u', 'd'], REQ, '00000022', '00000005', '66', '00', '75', '00', '64'),
  example(Magic.REQ, PacketType.SUBMIT_JOB_SCHED, ['f', 'u', '1', '2', '3', '4', '5', 'd'], REQ, '00000023', '0000000f',
    '66', '00', '75', '00', '31', '00', '32', '00', '33', '00', '34', '00', '35', '00', '64'),
  example(Magic.REQ, PacketType.SUBMIT_JOB_EPOCH, ['f', 'u', '9', 'd'], REQ, '00000024', '00000007',
    '66', '00', '75', '00', '39', '00', '64'),
  // The aggregator is empty: two NULs in a row.
  example(Magic.REQ, PacketType.SUBMIT_REDUCE_JOB, ['f', 'u', 'r', '', 'd'], REQ, '00000025', '00000008',
    '66', '00', '75', '00', '72', '00', '00', '64'),
  example(Magic.REQ, PacketType.SUBMIT_REDUCE_JOB_BACKGROUND, ['f', 'u', 'r', '', 'd'], REQ, '00000026', '00000008',
    '66', '00', '75', '00', '72', '00', '00', '64'),
  example(Magic.REQ, PacketType.GRAB_JOB_ALL, [], REQ, '00000027', '00000000'),
  example(Magic.RES, PacketType.JOB_ASSIGN_ALL, ['H:1', 'f', 'u', 'r', 'd'], RES, '00000028', '0000000b',
    '483a31', '00', '66', '00', '75', '00', '72', '00', '64'),
  example(Magic.REQ, PacketType.GET_STATUS_UNIQUE, ['u'], REQ, '00000029', '00000001', '75'),
  example(Magic.RES, PacketType.STATUS_RES_UNIQUE, ['u', '1', '1', '3', '4', '2'], RES, '0000002a', '0000000b',
    '75', '00', '31', '00', '31', '00', '33', '00', '34', '00', '32'),
  // Text is written as UTF-8 (é = c3 a9), buffers byte for byte, empty arguments as nothing.
  example(Magic.REQ, PacketType.SUBMIT_JOB, ['é', '', Buffer.from([0xff, 0x00, 0x80])], REQ, '00000007', '00000007',
    'c3a9', '00', '00', 'ff0080'),
  example(Magic.REQ, PacketType.ECHO_REQ, [''], REQ, '00000010', '00000000'),
];

/** An argument as the decoder yields it. */
export function asBuffer(arg: string | Buffer): Buffer {
  return typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg;
}
