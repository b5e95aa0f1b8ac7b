import type { Socket } from 'node:net';
import { FramedSocket } from '../connection/framed-socket.js';
// Imported from each file, not the protocol index: the CommonJS build turns every use of an
// index re-export into a getter call, which showed in the server's hot path.
import { asciiLowerCase, formatAdminError, MAX_ADMIN_WORDS, parseAdminCommand } from '../protocol/admin.js';
import type { Frame, Packet } from '../protocol/decoder.js';
import { encodeResponse } from '../protocol/encoder.js';
import { Magic, PACKET_SPECS, PacketType } from '../protocol/packet-types.js';
import { GearmanProtocolError, ProtocolErrorCode } from '../protocol/protocol-error.js';
import type { GearmanFunction } from './gearman-function.js';
import type { Job } from './job.js';
import { Priority } from './job.js';
import type { JobServerContext } from './job-server-context.js';
import { parseLeadingInteger } from './job-broker.js';
import { nextScheduledTime, ScheduleError } from './schedule.js';
import { encodeByteStringResponse } from './server-packets.js';

/** gearmand's limits. */
const MAX_UNIQUE_BYTES = 64;
const MAX_CLIENT_ID_BYTES = 127;
/** GET_STATUS and WORK_FAIL copy the handle into 64 bytes with its NUL; GET_STATUS_UNIQUE the unique. */
const MAX_LOOKUP_BYTES = 63;
/** gearmand 2.0 reads a CAN_DO_TIMEOUT timeout of at most 20 characters with strtol (LONG_MAX/LONG_MIN mean overflow). */
const MAX_TIMEOUT_CHARACTERS = 20;
const LONG_MAX = 2n ** 63n - 1n;
const LONG_MIN = -(2n ** 63n);
/** gearmand's receive buffer: every argument but a payload must fit in it, with its NUL separator. */
const MAX_ARGUMENT_BYTES = 8192;

const SUBMIT_KINDS: Partial<Record<PacketType, { priority: Priority; background: boolean }>> = {
  [PacketType.SUBMIT_JOB]: { priority: Priority.NORMAL, background: false },
  [PacketType.SUBMIT_JOB_BG]: { priority: Priority.NORMAL, background: true },
  [PacketType.SUBMIT_JOB_HIGH]: { priority: Priority.HIGH, background: false },
  [PacketType.SUBMIT_JOB_HIGH_BG]: { priority: Priority.HIGH, background: true },
  [PacketType.SUBMIT_JOB_LOW]: { priority: Priority.LOW, background: false },
  [PacketType.SUBMIT_JOB_LOW_BG]: { priority: Priority.LOW, background: true },
};

/** Byte-exact text of an argument: names, uniques and payloads are kept as latin1 strings. */
function bytes(arg: Buffer): string {
  return arg.toString('latin1');
}

/** An argument as gearmand reads it as a C string: up to its first NUL. */
function cString(arg: Buffer): string {
  const nul = arg.indexOf(0);
  return arg.toString('latin1', 0, nul === -1 ? arg.length : nul);
}

/** The name of the first argument too large for gearmand's receive buffer, if any. */
function oversizedArgument(packet: Packet): string | undefined {
  const names = PACKET_SPECS[packet.type]!.args;
  const args = packet.args;
  for (let i = 0; i < args.length; i++) {
    const last = i === args.length - 1;
    if (last && names[i] === 'data') return undefined;
    if (args[i].length + (last ? 0 : 1) > MAX_ARGUMENT_BYTES) return names[i];
  }
  return undefined;
}

/**
 * One peer (client, worker, admin tool or all three) and what the server knows of it. Decoding
 * and per-tick write batching are FramedSocket's; this class turns frames into broker calls.
 */
export class ServerConnection {
  /** Functions this connection can do, with their CAN_DO_TIMEOUT in ms (0: none). */
  readonly abilities = new Map<GearmanFunction, number>();
  /** Every CAN_DO in force, oldest first, repeats included (the `workers` listing shows them all). */
  registrations: GearmanFunction[] = [];
  /** Jobs assigned to this connection, by handle counter. */
  readonly held = new Map<number, Job>();
  /** Foreground jobs whose results this connection waits for. */
  readonly waiting = new Set<Job>();
  sleeping = false;
  noopSent = false;
  exceptions: boolean;
  clientId = '-';
  readonly host: string;
  private readonly framed: FramedSocket;
  /** Set once the server decided to close this connection: later frames are not acted on. */
  private ending = false;

  constructor(
    readonly id: number,
    socket: Socket,
    private readonly context: JobServerContext,
  ) {
    this.exceptions = context.exceptions;
    this.host = (socket.remoteAddress ?? '-').replace(/^::ffff:/, '');
    this.framed = new FramedSocket(
      socket,
      // As gearmand: a packet with response magic, or of a type only a server sends, is answered
      // with an ERROR and the connection stays; a payload on an argument-less packet is ignored.
      {
        accept: 'any',
        checkDirection: false,
        extraPayload: 'ignore',
        // gearmand's receive buffer holds an admin line with its newline; bytes are kept as they are.
        maxAdminLineLength: MAX_ARGUMENT_BYTES - 1,
        adminEncoding: 'latin1',
        maxPacketSize: context.maxPacketSize,
        keepAliveMs: context.keepAliveMs,
      },
      {
        onFrame: (frame) => this.onFrame(frame),
        onProtocolError: (error) => this.onProtocolError(error),
        onClose: (error) => context.connectionClosed(this, error),
      },
    );
  }

  send(packet: Buffer | string): void {
    if (this.ending) return;
    this.framed.write(typeof packet === 'string' ? Buffer.from(packet, 'latin1') : packet);
  }

  /** Sends what is queued, then closes. */
  end(): void {
    if (this.ending) return;
    this.framed.end();
    this.ending = true;
  }

  destroy(): void {
    this.framed.destroy();
  }

  private onFrame(frame: Frame): void {
    if (this.ending) return;
    try {
      if (frame.kind === 'admin') this.onAdminLine(frame.line);
      else this.onPacket(frame);
    } catch (error) {
      // A bug must not take the server down: report it, drop this connection, keep the rest.
      this.context.logError(`connection ${this.id}: ${(error as Error).stack ?? error}`);
      this.sendError('SERVER_ERROR', 'Internal server error');
      this.end();
    }
  }

  private onAdminLine(line: string): void {
    if (parseAdminCommand(line).args.length >= MAX_ADMIN_WORDS) {
      // gearmand drops a connection whose admin line has more words than it parses.
      this.context.logWarning(`connection ${this.id} (${this.host}) sent an admin line of more than ${MAX_ADMIN_WORDS} words`);
      this.send(formatAdminError('TOO_MANY_ARGUMENTS', `An admin command takes at most ${MAX_ADMIN_WORDS} words`));
      this.end();
      return;
    }
    this.send(this.context.runAdmin(this, line));
  }

  private onProtocolError(error: GearmanProtocolError): void {
    this.context.logWarning(`connection ${this.id} (${this.host}) broke the protocol: ${error.message}`);
    if (error.code === ProtocolErrorCode.ADMIN_LINE_TOO_LONG) this.send(formatAdminError('LINE_TOO_LONG', error.message));
    else this.sendError(error.code, error.message);
    this.end();
  }

  private sendError(code: string, text: string): void {
    this.send(encodeResponse(PacketType.ERROR, code, text));
  }

  /** Answers a broken packet with an ERROR and closes the connection, as for a protocol error. */
  private refuse(code: ProtocolErrorCode, message: string): void {
    this.context.logWarning(`connection ${this.id} (${this.host}) broke the protocol: ${message}`);
    this.sendError(code, message);
    this.end();
  }

  private onPacket(packet: Packet): void {
    const oversized = oversizedArgument(packet);
    if (oversized !== undefined) {
      // gearmand drops the connection when an argument outgrows its receive buffer.
      this.refuse(ProtocolErrorCode.ARGUMENT_TOO_LARGE, `${PacketType[packet.type]} ${oversized} is over ${MAX_ARGUMENT_BYTES} bytes`);
      return;
    }
    if (packet.magic !== Magic.REQ) {
      this.sendError('INVALID_MAGIC', 'Request magic expected');
      return;
    }
    const broker = this.context.broker;
    const args = packet.args;
    switch (packet.type) {
      case PacketType.ECHO_REQ:
        this.send(encodeResponse(PacketType.ECHO_RES, args[0]));
        return;
      case PacketType.SUBMIT_JOB:
      case PacketType.SUBMIT_JOB_BG:
      case PacketType.SUBMIT_JOB_HIGH:
      case PacketType.SUBMIT_JOB_HIGH_BG:
      case PacketType.SUBMIT_JOB_LOW:
      case PacketType.SUBMIT_JOB_LOW_BG: {
        const kind = SUBMIT_KINDS[packet.type]!;
        this.submit(args[0], args[1], args[2], kind.priority, kind.background);
        return;
      }
      case PacketType.SUBMIT_JOB_EPOCH:
        this.submit(args[0], args[1], args[3], Priority.NORMAL, true, '', parseLeadingInteger(bytes(args[2])) * 1000);
        return;
      case PacketType.SUBMIT_JOB_SCHED: {
        let runAt: number;
        try {
          runAt = nextScheduledTime(args.slice(2, 7).map(bytes), Date.now());
        } catch (error) {
          if (!(error instanceof ScheduleError)) throw error;
          this.sendError('INVALID_SCHEDULE', error.message);
          return;
        }
        this.submit(args[0], args[1], args[7], Priority.NORMAL, true, '', runAt);
        return;
      }
      case PacketType.SUBMIT_REDUCE_JOB:
      case PacketType.SUBMIT_REDUCE_JOB_BACKGROUND:
        // gearmand holds the reducer to the unique id's limit, with the unique id's message.
        if (args[2].length > MAX_UNIQUE_BYTES) {
          this.sendError('ARGUMENT_TOO_LARGE', 'Unique value too large');
          return;
        }
        this.submit(args[0], args[1], args[4], Priority.NORMAL, packet.type === PacketType.SUBMIT_REDUCE_JOB_BACKGROUND, bytes(args[2]));
        return;
      case PacketType.GET_STATUS:
      case PacketType.GET_STATUS_UNIQUE: {
        // gearmand drops the connection when the handle or unique does not fit its 64-byte buffer.
        const key = cString(args[0]);
        const what = packet.type === PacketType.GET_STATUS ? 'job handle' : 'unique id';
        if (key.length > MAX_LOOKUP_BYTES)
          this.refuse(ProtocolErrorCode.ARGUMENT_TOO_LARGE, `${PacketType[packet.type]} ${what} is over ${MAX_LOOKUP_BYTES} bytes`);
        else if (packet.type === PacketType.GET_STATUS) this.sendStatus(key);
        else this.sendStatusUnique(key);
        return;
      }
      case PacketType.OPTION_REQ:
        if (asciiLowerCase(cString(args[0])) !== 'exceptions') {
          this.sendError('UNKNOWN_OPTION', 'Server does not recognize given option');
          return;
        }
        this.exceptions = true;
        this.send(encodeResponse(PacketType.OPTION_RES, args[0]));
        return;
      case PacketType.SET_CLIENT_ID:
        this.clientId = cString(args[0]).slice(0, MAX_CLIENT_ID_BYTES);
        return;
      case PacketType.CAN_DO:
        broker.canDo(this, bytes(args[0]), 0);
        return;
      case PacketType.CAN_DO_TIMEOUT: {
        // gearmand 2.0 drops a connection whose timeout is over 20 characters or outside strtol's range.
        const text = bytes(args[1]);
        const match = /^\s*([+-]?\d+)/.exec(text);
        const value = match ? BigInt(match[1]) : 0n;
        if (text.length > MAX_TIMEOUT_CHARACTERS || value >= LONG_MAX || value <= LONG_MIN) {
          this.refuse(ProtocolErrorCode.ARGUMENT_TOO_LARGE, `CAN_DO_TIMEOUT timeout ${JSON.stringify(text)} is out of range`);
          return;
        }
        broker.canDo(this, bytes(args[0]), Math.max(Number(value), 0));
        return;
      }
      case PacketType.CANT_DO:
        broker.cantDo(this, bytes(args[0]));
        return;
      case PacketType.RESET_ABILITIES:
        broker.resetAbilities(this);
        return;
      case PacketType.PRE_SLEEP:
        broker.preSleep(this);
        return;
      case PacketType.GRAB_JOB:
      case PacketType.GRAB_JOB_UNIQ:
      case PacketType.GRAB_JOB_ALL:
        broker.grab(this, packet.type);
        return;
      case PacketType.WORK_DATA:
      case PacketType.WORK_WARNING:
      case PacketType.WORK_STATUS: {
        const job = broker.heldBy(this, bytes(args[0]));
        if (job) broker.relay(job, packet.type, args);
        else
          this.sendError(
            'JOB_NOT_FOUND',
            packet.type === PacketType.WORK_STATUS ? 'Job given in work result not found' : 'Job does not exist on server',
          );
        return;
      }
      case PacketType.WORK_COMPLETE:
      case PacketType.WORK_FAIL:
      case PacketType.WORK_EXCEPTION: {
        const handle = cString(args[0]);
        if (packet.type === PacketType.WORK_FAIL && handle.length > MAX_LOOKUP_BYTES) {
          this.sendError('ARGUMENT_TOO_LARGE', 'Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf');
          return;
        }
        const job = broker.heldBy(this, handle);
        if (job) broker.finish(job, packet.type, args);
        else {
          this.sendError(
            'JOB_NOT_FOUND',
            packet.type === PacketType.WORK_EXCEPTION
              ? 'An exception was received for a job that does not exist'
              : 'Job given in work result not found',
          );
        }
        return;
      }
      default:
        // ALL_YOURS and anything else a server does not take (as gearmand answers).
        this.sendError('INVALID_COMMAND', 'Command not expected');
    }
  }

  private submit(
    fnArg: Buffer,
    uniqueArg: Buffer,
    dataArg: Buffer,
    priority: Priority,
    background: boolean,
    reducer = '',
    runAt = 0,
  ): void {
    if (uniqueArg.length > MAX_UNIQUE_BYTES) {
      this.sendError('ARGUMENT_TOO_LARGE', 'Unique value too large');
      return;
    }
    const broker = this.context.broker;
    const result = broker.submit(background ? undefined : this, bytes(fnArg), bytes(uniqueArg), bytes(dataArg), priority, reducer, runAt);
    if ('error' in result) {
      this.sendError('QUEUE_ERROR', 'Job queue is full');
      return;
    }
    this.send(encodeByteStringResponse(PacketType.JOB_CREATED, [broker.handleOf(result.job)]));
  }

  private sendStatus(handle: string): void {
    const job = this.context.broker.findByHandle(handle);
    const fields = job
      ? [handle, '1', job.run ? '1' : '0', String(job.run?.numerator ?? 0), String(job.run?.denominator ?? 0)]
      : [handle, '0', '0', '0', '0'];
    this.send(encodeByteStringResponse(PacketType.STATUS_RES, fields));
  }

  private sendStatusUnique(unique: string): void {
    const job = this.context.broker.findByUnique(unique);
    const fields = job
      ? [
          unique,
          '1',
          job.run ? '1' : '0',
          String(job.run?.numerator ?? 0),
          String(job.run?.denominator ?? 0),
          String(job.clients?.length ?? 0),
        ]
      : [unique, '0', '0', '0', '0', '0'];
    this.send(encodeByteStringResponse(PacketType.STATUS_RES_UNIQUE, fields));
  }
}
