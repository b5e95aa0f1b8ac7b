import { PacketType } from '../../../lib/protocol/index.js';

/** A seeded pseudo-random generator (mulberry32): the same seed gives the same inputs. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  bytes(length: number): Buffer {
    const bytes = Buffer.alloc(length);
    for (let i = 0; i < length; i++) bytes[i] = this.below(256);
    return bytes;
  }

  /** Mostly short, sometimes long: what breaks parsers is at the edges. */
  length(max: number): number {
    const roll = this.next();
    if (roll < 0.6) return this.below(16);
    if (roll < 0.9) return this.below(256);
    return this.below(max + 1);
  }
}

/** The kinds of input, each a way a broken or hostile peer could write to the job server. */
export const INPUT_KINDS = [
  'random-bytes',
  'random-packet',
  'bad-header',
  'huge-length',
  'truncated-packet',
  'valid-traffic',
  'admin-line',
  'long-admin-line',
  'nul-admin-line',
] as const;
export type InputKind = (typeof INPUT_KINDS)[number];

/** Kinds after which the server usually keeps reading the connection; the others usually end it. */
export const GENTLE_KINDS: readonly InputKind[] = ['valid-traffic', 'admin-line', 'nul-admin-line', 'random-packet'];
export const ENDING_KINDS: readonly InputKind[] = INPUT_KINDS.filter((kind) => !GENTLE_KINDS.includes(kind));

const FUNCTIONS = ['f', 'g', 'reverse', 'x'.repeat(300), 'ünïcödé', '\u0001ctl'];
const ADMIN_WORDS = [
  'status',
  'workers',
  'prioritystatus',
  'version',
  'getpid',
  'verbose',
  'show',
  'jobs',
  'unique',
  'cancel',
  'job',
  'drop',
  'function',
  'create',
  'maxqueue',
  'shutdown',
  '',
];

function header(magic: string, type: number, length: number): Buffer {
  const bytes = Buffer.alloc(12);
  bytes.write(magic, 0, 'latin1');
  bytes.writeUInt32BE(type >>> 0, 4);
  bytes.writeUInt32BE(length >>> 0, 8);
  return bytes;
}

function packet(magic: string, type: number, args: Buffer[]): Buffer {
  const payload = Buffer.concat(args.flatMap((arg, i) => (i === 0 ? [arg] : [Buffer.from([0]), arg])));
  return Buffer.concat([header(magic, type, payload.length), payload]);
}

/** Makes the next input of a kind: the bytes to write on one connection. */
export function makeInput(random: Random, kind: InputKind): Buffer {
  switch (kind) {
    case 'random-bytes':
      return random.bytes(1 + random.length(400));
    case 'random-packet': {
      const args = Array.from({ length: random.below(9) }, () => random.bytes(random.length(300)));
      return packet(random.pick(['\0REQ', '\0REQ', '\0RES']), 1 + random.below(43), args);
    }
    case 'bad-header': {
      const magic = random.pick(['\0REQ', '\0RES', '\0REX', 'XREQ', '\0\0\0\0', random.bytes(4).toString('latin1')]);
      const type = random.pick([0, 5, 43, 99, 0x7fffffff, 0x80000000, 0xffffffff, random.below(2 ** 32)]);
      return Buffer.concat([header(magic, type, random.below(64)), random.bytes(random.below(64))]);
    }
    case 'huge-length': {
      // Lengths at and past every limit, with a few bytes of payload and nothing more.
      const length = random.pick([2 ** 32 - 1, 2 ** 31, 64 * 1024 * 1024 + 1, 64 * 1024 * 1024, 16 * 1024 * 1024, random.below(2 ** 32)]);
      return Buffer.concat([
        header('\0REQ', random.pick([PacketType.SUBMIT_JOB, PacketType.ECHO_REQ, PacketType.WORK_DATA]), length),
        random.bytes(random.below(32)),
      ]);
    }
    case 'truncated-packet': {
      const whole = packet(
        '\0REQ',
        random.pick([PacketType.SUBMIT_JOB, PacketType.CAN_DO, PacketType.ECHO_REQ, PacketType.WORK_COMPLETE]),
        [Buffer.from(random.pick(FUNCTIONS)), random.bytes(random.length(64)), random.bytes(random.length(200))],
      );
      return whole.subarray(0, random.below(whole.length));
    }
    case 'valid-traffic': {
      const fn = Buffer.from(random.pick(FUNCTIONS));
      const choices: Buffer[] = [
        packet('\0REQ', PacketType.SUBMIT_JOB_BG, [
          fn,
          random.bytes(random.below(3) === 0 ? 0 : random.below(70)),
          random.bytes(random.length(200)),
        ]),
        packet('\0REQ', PacketType.SUBMIT_JOB, [fn, Buffer.from(''), random.bytes(random.length(100))]),
        packet('\0REQ', PacketType.CAN_DO, [fn]),
        packet('\0REQ', PacketType.CAN_DO_TIMEOUT, [fn, Buffer.from(String(random.below(2 ** 31) - 2 ** 30))]),
        packet('\0REQ', PacketType.GRAB_JOB_UNIQ, []),
        packet('\0REQ', PacketType.PRE_SLEEP, []),
        packet('\0REQ', PacketType.WORK_COMPLETE, [Buffer.from(`H:x:${random.below(1000)}`), random.bytes(random.length(100))]),
        packet('\0REQ', PacketType.WORK_STATUS, [Buffer.from(`H:x:${random.below(1000)}`), random.bytes(8), random.bytes(12)]),
        packet('\0REQ', PacketType.GET_STATUS, [random.bytes(random.length(80))]),
        packet('\0REQ', PacketType.GET_STATUS_UNIQUE, [random.bytes(random.length(80))]),
        packet('\0REQ', PacketType.OPTION_REQ, [random.bytes(random.length(20))]),
        packet('\0REQ', PacketType.SET_CLIENT_ID, [random.bytes(random.length(200))]),
        packet(
          '\0REQ',
          PacketType.SUBMIT_JOB_SCHED,
          Array.from({ length: 8 }, () => random.bytes(random.below(6))),
        ),
        packet('\0REQ', PacketType.SUBMIT_JOB_EPOCH, [fn, Buffer.from('u'), Buffer.from(String(random.below(2 ** 33))), random.bytes(10)]),
        packet('\0REQ', PacketType.ECHO_REQ, [random.bytes(random.length(1000))]),
      ];
      return random.pick(choices);
    }
    case 'admin-line': {
      const words = Array.from({ length: random.below(7) }, () => random.pick(ADMIN_WORDS));
      return Buffer.from(
        `${random.pick(['', ' ', 'X'])}${words.join(random.pick([' ', '  ', '\t']))}${random.pick(['\n', '\r\n', ''])}`,
        'latin1',
      );
    }
    case 'long-admin-line':
      return Buffer.concat([
        Buffer.from(random.pick(['status ', 'show ', 'a'])),
        Buffer.alloc(8000 + random.below(2000), 0x61),
        Buffer.from('\n'),
      ]);
    case 'nul-admin-line':
      return Buffer.concat([
        Buffer.from(random.pick(ADMIN_WORDS) || 's'),
        Buffer.from([0]),
        random.bytes(random.length(50)),
        Buffer.from('\n'),
      ]);
  }
}
