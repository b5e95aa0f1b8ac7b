/** Every binary packet type of the Gearman protocol, by its wire code. */
export enum PacketType {
  CAN_DO = 1,
  CANT_DO = 2,
  RESET_ABILITIES = 3,
  PRE_SLEEP = 4,
  UNUSED = 5,
  NOOP = 6,
  SUBMIT_JOB = 7,
  JOB_CREATED = 8,
  GRAB_JOB = 9,
  NO_JOB = 10,
  JOB_ASSIGN = 11,
  WORK_STATUS = 12,
  WORK_COMPLETE = 13,
  WORK_FAIL = 14,
  GET_STATUS = 15,
  ECHO_REQ = 16,
  ECHO_RES = 17,
  SUBMIT_JOB_BG = 18,
  ERROR = 19,
  STATUS_RES = 20,
  SUBMIT_JOB_HIGH = 21,
  SET_CLIENT_ID = 22,
  CAN_DO_TIMEOUT = 23,
  ALL_YOURS = 24,
  WORK_EXCEPTION = 25,
  OPTION_REQ = 26,
  OPTION_RES = 27,
  WORK_DATA = 28,
  WORK_WARNING = 29,
  GRAB_JOB_UNIQ = 30,
  JOB_ASSIGN_UNIQ = 31,
  SUBMIT_JOB_HIGH_BG = 32,
  SUBMIT_JOB_LOW = 33,
  SUBMIT_JOB_LOW_BG = 34,
  SUBMIT_JOB_SCHED = 35,
  SUBMIT_JOB_EPOCH = 36,
  SUBMIT_REDUCE_JOB = 37,
  SUBMIT_REDUCE_JOB_BACKGROUND = 38,
  GRAB_JOB_ALL = 39,
  JOB_ASSIGN_ALL = 40,
  GET_STATUS_UNIQUE = 41,
  STATUS_RES_UNIQUE = 42,
}

/** The two magic codes: `\0REQ` travels toward a job server, `\0RES` comes from one. */
export enum Magic {
  REQ = 'REQ',
  RES = 'RES',
}

/**
 * Which magic a packet type travels with: `request` toward the server, `response` from it,
 * `both` for the WORK_* packets a worker sends and the server relays to clients.
 * `unused` marks code 5, which no peer sends.
 */
export type PacketDirection = 'request' | 'response' | 'both' | 'unused';

/** Argument names; those with a fixed size limit are listed in ARGUMENT_LIMITS. */
export type ArgumentName =
  | 'function'
  | 'unique'
  | 'data'
  | 'handle'
  | 'numerator'
  | 'denominator'
  | 'code'
  | 'text'
  | 'known'
  | 'running'
  | 'id'
  | 'timeout'
  | 'option'
  | 'minute'
  | 'hour'
  | 'dayOfMonth'
  | 'month'
  | 'dayOfWeek'
  | 'epoch'
  | 'reducer'
  | 'aggregator'
  | 'waiting';

export interface PacketSpec {
  readonly type: PacketType;
  readonly name: keyof typeof PacketType;
  readonly direction: PacketDirection;
  /** Argument names in wire order; the last one runs to the end of the payload. */
  readonly args: readonly ArgumentName[];
}

/** Byte limits gearmand enforces (function names: libgearman's). */
export const ARGUMENT_LIMITS: Readonly<Partial<Record<ArgumentName, number>>> = {
  unique: 64,
  handle: 64,
  option: 64,
  function: 512,
};

const SUBMIT: readonly ArgumentName[] = ['function', 'unique', 'data'];
const HANDLE_DATA: readonly ArgumentName[] = ['handle', 'data'];

function spec(type: PacketType, direction: PacketDirection, args: readonly ArgumentName[]): PacketSpec {
  return Object.freeze({ type, name: PacketType[type] as keyof typeof PacketType, direction, args: Object.freeze([...args]) });
}

/** The packet table, indexed by type code (index 0 is empty: no packet has code 0). */
export const PACKET_SPECS: readonly (PacketSpec | undefined)[] = (() => {
  const table: (PacketSpec | undefined)[] = [];
  const add = (type: PacketType, direction: PacketDirection, args: readonly ArgumentName[]) => {
    table[type] = spec(type, direction, args);
  };
  add(PacketType.CAN_DO, 'request', ['function']);
  add(PacketType.CANT_DO, 'request', ['function']);
  add(PacketType.RESET_ABILITIES, 'request', []);
  add(PacketType.PRE_SLEEP, 'request', []);
  add(PacketType.UNUSED, 'unused', []);
  add(PacketType.NOOP, 'response', []);
  add(PacketType.SUBMIT_JOB, 'request', SUBMIT);
  add(PacketType.JOB_CREATED, 'response', ['handle']);
  add(PacketType.GRAB_JOB, 'request', []);
  add(PacketType.NO_JOB, 'response', []);
  add(PacketType.JOB_ASSIGN, 'response', ['handle', 'function', 'data']);
  add(PacketType.WORK_STATUS, 'both', ['handle', 'numerator', 'denominator']);
  add(PacketType.WORK_COMPLETE, 'both', HANDLE_DATA);
  add(PacketType.WORK_FAIL, 'both', ['handle']);
  add(PacketType.GET_STATUS, 'request', ['handle']);
  add(PacketType.ECHO_REQ, 'request', ['data']);
  add(PacketType.ECHO_RES, 'response', ['data']);
  add(PacketType.SUBMIT_JOB_BG, 'request', SUBMIT);
  add(PacketType.ERROR, 'response', ['code', 'text']);
  add(PacketType.STATUS_RES, 'response', ['handle', 'known', 'running', 'numerator', 'denominator']);
  add(PacketType.SUBMIT_JOB_HIGH, 'request', SUBMIT);
  add(PacketType.SET_CLIENT_ID, 'request', ['id']);
  add(PacketType.CAN_DO_TIMEOUT, 'request', ['function', 'timeout']);
  add(PacketType.ALL_YOURS, 'request', []);
  add(PacketType.WORK_EXCEPTION, 'both', HANDLE_DATA);
  add(PacketType.OPTION_REQ, 'request', ['option']);
  add(PacketType.OPTION_RES, 'response', ['option']);
  add(PacketType.WORK_DATA, 'both', HANDLE_DATA);
  add(PacketType.WORK_WARNING, 'both', HANDLE_DATA);
  add(PacketType.GRAB_JOB_UNIQ, 'request', []);
  add(PacketType.JOB_ASSIGN_UNIQ, 'response', ['handle', 'function', 'unique', 'data']);
  add(PacketType.SUBMIT_JOB_HIGH_BG, 'request', SUBMIT);
  add(PacketType.SUBMIT_JOB_LOW, 'request', SUBMIT);
  add(PacketType.SUBMIT_JOB_LOW_BG, 'request', SUBMIT);
  add(PacketType.SUBMIT_JOB_SCHED, 'request', ['function', 'unique', 'minute', 'hour', 'dayOfMonth', 'month', 'dayOfWeek', 'data']);
  add(PacketType.SUBMIT_JOB_EPOCH, 'request', ['function', 'unique', 'epoch', 'data']);
  add(PacketType.SUBMIT_REDUCE_JOB, 'request', ['function', 'unique', 'reducer', 'aggregator', 'data']);
  add(PacketType.SUBMIT_REDUCE_JOB_BACKGROUND, 'request', ['function', 'unique', 'reducer', 'aggregator', 'data']);
  add(PacketType.GRAB_JOB_ALL, 'request', []);
  add(PacketType.JOB_ASSIGN_ALL, 'response', ['handle', 'function', 'unique', 'reducer', 'data']);
  add(PacketType.GET_STATUS_UNIQUE, 'request', ['unique']);
  add(PacketType.STATUS_RES_UNIQUE, 'response', ['unique', 'known', 'running', 'numerator', 'denominator', 'waiting']);
  return Object.freeze(table);
})();

/** The spec of a type code, or undefined when the code is not a Gearman packet type. */
export function packetSpec(type: number): PacketSpec | undefined {
  return PACKET_SPECS[type];
}

/** Whether a packet type may travel with the given magic. */
export function allowsMagic(spec: PacketSpec, magic: Magic): boolean {
  if (spec.direction === 'both') return true;
  if (magic === Magic.REQ) return spec.direction === 'request';
  return spec.direction === 'response';
}
