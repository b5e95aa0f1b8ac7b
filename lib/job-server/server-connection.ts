import type { FrameTransport } from '../connection/frame-transport.js';
import { FramedSocket } from '../connection/framed-socket.js';
import type { ReadTurns } from '../connection/read-turns.js';
// Imported from each file, not the protocol index: the CommonJS build turns every use of an
// index re-export into a getter call, which showed in the server's hot path.
import { asciiLowerCase, formatAdminError, MAX_ADMIN_WORDS, parseAdminCommand } from '../protocol/admin.js';
import type { Frame, Packet } from '../protocol/decoder.js';
import { encodeByteStringResponse, encodeResponse } from '../protocol/encoder.js';
import { Magic, PACKET_SPECS, PacketType } from '../protocol/packet-types.js';
import { GearmanProtocolError, ProtocolErrorCode } from '../protocol/protocol-error.js';
import type { AdminAccess } from './admin-access.js';
import type { BrokerPeer } from './broker-peer.js';
import { atoi, canDoTimeout, MAX_ARGUMENT_BYTES, MAX_CLIENT_ID_BYTES, MAX_LOOKUP_BYTES, MAX_UNIQUE_BYTES } from './gearmand-limits.js';
import { Priority } from './job.js';
import type { JobBroker } from './job-broker.js';
import type { PeerState } from './peer-state.js';
import type { ReservedFunctions } from './reserved-functions.js';
import { nextScheduledTime, ScheduleError } from './schedule.js';

/** What a connection needs from the server that owns it. */
export interface ServerConnectionContext {
  readonly broker: JobBroker;
  /** The server's `exceptions` option: every connection starts with it. */
  readonly exceptions: boolean;
  readonly maxPacketSize: number;
  readonly keepAliveMs: number | undefined;
  readonly limits: ConnectionLimits;
  /** How the connections share the turns of the event loop; undefined when framesPerTurn is 0 (no bound). */
  readonly readTurns: ReadTurns | undefined;
  /** The number of the server's current sweep (see ServerConnection.sweep). */
  currentSweep(): number;
  /** Runs one admin line (a byte string) for a peer with this access and returns the reply text (a byte string). */
  runAdmin(line: string, access: AdminAccess): string;
  /** The functions the server answers itself (gearman.result, gearman.batch, …); absent when it keeps no results. */
  readonly reserved?: ReservedFunctions;
  connectionClosed(con: ServerConnection, error?: Error): void;
  logWarning(message: string): void;
  logError(message: string): void;
  logDebug(message: string): void;
}

/** The server's limits that each connection applies to itself (see JobServerLimits); 0 = none. */
export interface ConnectionLimits {
  readonly outputBufferSoftBytes: number;
  readonly outputBufferHardBytes: number;
  readonly framesPerTurn: number;
  readonly idleTimeoutMs: number;
  readonly packetTimeoutMs: number;
}

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
 * A connection over its limits, found by ServerConnection.sweep, and why: the server closes it.
 * `idle` is routine (a debug line), the others a warning.
 */
export type Overstay = 'idle' | 'partial-packet' | 'not-reading';

/** A place reserved in the outgoing stream (see BrokerPeer.reserve), and what waits behind it. */
interface Reservation {
  packet: Buffer | undefined;
  readonly behind: Buffer[];
}

/**
 * One peer (client, worker, admin tool or all three) on its socket. Decoding and per-tick write
 * batching are FramedSocket's, scheduling is the broker's: this class reads each packet's
 * arguments, applies gearmand's argument limits, and calls the broker or the admin commands.
 *
 * It also keeps the peer within its limits: the replies it owes the peer (written, not yet taken)
 * pause reading from it past the soft limit and close it past the hard one; FramedSocket hands
 * over a bounded number of frames per turn; sweep() finds it idle, stuck in a partial packet, or
 * not reading its replies.
 */
export class ServerConnection implements BrokerPeer {
  exceptions: boolean;
  clientId = '-';
  readonly host: string;
  private readonly framed: FramedSocket;
  private readonly state: PeerState;
  /** Set once the server decided to close this connection: later frames are not acted on. */
  private ending = false;
  /** Reserved places not filled yet, oldest first; while any, packets queue behind the newest. */
  private reservations: Reservation[] | undefined;
  /** Bytes of the packets queued behind reservations. */
  private reservedBytes = 0;
  /** Reading is paused because the peer owes too many replies; since which sweep. */
  private outputPausedAt = -1;
  /** Frames received so far, and the sweep that last saw a change. */
  private frames = 0;
  private framesAtSweep = 0;
  private lastActiveSweep = 0;
  /** The sweep that first saw the current partial frame, and the frame count then. */
  private partialSince = -1;
  private framesAtPartial = 0;

  constructor(
    readonly id: number,
    socket: FrameTransport,
    private readonly context: ServerConnectionContext,
    /** What this peer may run of the admin commands (the server's adminCommands rule). */
    private readonly adminAccess: AdminAccess,
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
        readTurns: context.readTurns,
      },
      {
        onFrame: (frame) => this.onFrame(frame),
        onProtocolError: (error) => this.onProtocolError(error),
        onClose: (error) => context.connectionClosed(this, error),
        onDrain: () => this.onDrain(),
      },
    );
    this.state = context.broker.connect(this);
  }

  /** Bytes received and sent on this connection so far (the server's traffic counters). */
  get bytesReceived(): number {
    return this.framed.bytesReceived;
  }

  get bytesSent(): number {
    return this.framed.bytesSent;
  }

  send(packet: Buffer): void {
    if (this.ending) return;
    if (this.reservations) {
      this.reservations[this.reservations.length - 1].behind.push(packet);
      this.reservedBytes += packet.length;
      this.checkOutput(packet.length);
    } else if (!this.framed.write(packet)) {
      // Below the socket's high-water mark there is nothing to check.
      this.checkOutput(packet.length);
    }
  }

  /** Replies owed to the peer: written and not yet taken, or waiting behind a reservation. */
  get owedBytes(): number {
    return this.framed.queuedBytes + this.reservedBytes;
  }

  /**
   * Past the hard limit the connection is closed (what it owed before this packet was over it:
   * one packet, however large, always goes out); past the soft limit reading pauses until the
   * peer has taken what is queued.
   */
  private checkOutput(packetLength: number): void {
    const { outputBufferSoftBytes: soft, outputBufferHardBytes: hard } = this.context.limits;
    const owed = this.owedBytes;
    if (hard > 0 && owed - packetLength >= hard) {
      this.context.logWarning(
        `connection ${this.id} (${this.host}) closed: it left ${owed} bytes of replies unread, over outputBufferHardBytes (${hard})`,
      );
      this.drop();
      return;
    }
    if (soft > 0 && owed >= soft && this.outputPausedAt < 0) {
      this.outputPausedAt = this.context.currentSweep();
      this.framed.pauseReading();
      this.framed.requestDrain();
    }
  }

  private onDrain(): void {
    if (this.outputPausedAt < 0 || this.ending) return;
    if (this.owedBytes >= this.context.limits.outputBufferSoftBytes) {
      this.framed.requestDrain();
      return;
    }
    this.outputPausedAt = -1;
    this.framed.resumeReading();
  }

  /**
   * Called by the server on every sweep (numbered from 0, `sweepMs` apart): what this connection
   * overstayed, if anything. Ticks, not clocks: nothing is timed per packet.
   */
  sweep(sweep: number, sweepMs: number): Overstay | undefined {
    const { idleTimeoutMs, packetTimeoutMs } = this.context.limits;
    if (this.frames !== this.framesAtSweep) {
      this.framesAtSweep = this.frames;
      this.lastActiveSweep = sweep;
    }
    if (this.outputPausedAt >= 0) {
      // Reading is ours to resume: neither idle nor slow, unless it never reads its replies.
      return idleTimeoutMs > 0 && (sweep - this.outputPausedAt) * sweepMs >= idleTimeoutMs ? 'not-reading' : undefined;
    }
    if (this.framed.hasPartialFrame) {
      if (this.partialSince < 0 || this.framesAtPartial !== this.frames) {
        this.partialSince = sweep;
        this.framesAtPartial = this.frames;
      }
      return packetTimeoutMs > 0 && (sweep - this.partialSince) * sweepMs >= packetTimeoutMs ? 'partial-packet' : undefined;
    }
    this.partialSince = -1;
    if (idleTimeoutMs > 0 && !this.state.isBusy && (sweep - this.lastActiveSweep) * sweepMs >= idleTimeoutMs) return 'idle';
    return undefined;
  }

  /** Says that a packet took too long to arrive (ERROR PACKET_TIMEOUT), then closes. */
  sendPacketTimeout(timeoutMs: number): void {
    this.sendError('PACKET_TIMEOUT', `A packet started arriving and was not whole within ${timeoutMs} ms`);
    this.end();
  }

  /** Closes the connection at once, dropping what it owes (its jobs go back to their queues). */
  drop(): void {
    this.ending = true;
    this.framed.destroy();
  }

  reserve(): (packet: Buffer) => void {
    const reservation: Reservation = { packet: undefined, behind: [] };
    (this.reservations ??= []).push(reservation);
    return (packet) => {
      reservation.packet = packet;
      this.reservedBytes += packet.length;
      this.releaseReservations();
    };
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

  /** Tells the broker this peer is gone: the jobs it held go back to their queues, its waits end. */
  leaveBroker(): void {
    this.context.reserved?.peerGone(this);
    this.context.broker.disconnect(this.state);
  }

  /** Writes the filled places at the head of the reservations, each followed by what queued behind it. */
  private releaseReservations(): void {
    const reservations = this.reservations!;
    let released = 0;
    while (released < reservations.length && reservations[released].packet) {
      const { packet, behind } = reservations[released++];
      this.reservedBytes -= packet!.length;
      for (const queued of behind) this.reservedBytes -= queued.length;
      if (this.ending) continue;
      this.framed.write(packet!);
      for (const queued of behind) this.framed.write(queued);
    }
    reservations.splice(0, released);
    if (reservations.length === 0) this.reservations = undefined;
    if (!this.ending) this.checkOutput(0);
  }

  private onFrame(frame: Frame): void {
    this.frames++;
    if (this.ending) return;
    try {
      this.context.broker.answerGrab(this.state);
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
      this.sendText(formatAdminError('TOO_MANY_ARGUMENTS', `An admin command takes at most ${MAX_ADMIN_WORDS} words`));
      this.end();
      return;
    }
    this.sendText(this.context.runAdmin(line, this.adminAccess));
  }

  /** An admin reply (a byte string). */
  private sendText(text: string): void {
    this.send(Buffer.from(text, 'latin1'));
  }

  private onProtocolError(error: GearmanProtocolError): void {
    this.context.logWarning(`connection ${this.id} (${this.host}) broke the protocol: ${error.message}`);
    if (error.code === ProtocolErrorCode.ADMIN_LINE_TOO_LONG) this.sendText(formatAdminError('LINE_TOO_LONG', error.message));
    else this.sendError(error.code, error.message);
    this.end();
  }

  /** `text` is written as UTF-8 (it may quote a peer's bytes, read as latin1). */
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
    const { type, args } = packet;
    switch (type) {
      case PacketType.ECHO_REQ:
        this.send(encodeByteStringResponse(PacketType.ECHO_RES, args));
        return;
      case PacketType.SUBMIT_JOB:
      case PacketType.SUBMIT_JOB_BG:
      case PacketType.SUBMIT_JOB_HIGH:
      case PacketType.SUBMIT_JOB_HIGH_BG:
      case PacketType.SUBMIT_JOB_LOW:
      case PacketType.SUBMIT_JOB_LOW_BG: {
        const [fn, unique, data] = args;
        const { priority, background } = SUBMIT_KINDS[type]!;
        this.submit(fn, unique, data, priority, background);
        return;
      }
      case PacketType.SUBMIT_JOB_EPOCH: {
        const [fn, unique, epoch, data] = args;
        this.submit(fn, unique, data, Priority.NORMAL, true, '', atoi(bytes(epoch)) * 1000);
        return;
      }
      case PacketType.SUBMIT_JOB_SCHED: {
        const [fn, unique, minute, hour, dayOfMonth, month, dayOfWeek, data] = args;
        let runAt: number;
        try {
          runAt = nextScheduledTime([minute, hour, dayOfMonth, month, dayOfWeek].map(bytes), Date.now());
        } catch (error) {
          if (!(error instanceof ScheduleError)) throw error;
          this.sendError('INVALID_SCHEDULE', error.message);
          return;
        }
        this.submit(fn, unique, data, Priority.NORMAL, true, '', runAt);
        return;
      }
      case PacketType.SUBMIT_REDUCE_JOB:
      case PacketType.SUBMIT_REDUCE_JOB_BACKGROUND: {
        // The aggregator is read and ignored: neither gearmand nor this server aggregates.
        const [fn, unique, reducer, _aggregator, data] = args;
        // gearmand holds the reducer to the unique id's limit, with the unique id's message.
        if (reducer.length > MAX_UNIQUE_BYTES) {
          this.sendError('ARGUMENT_TOO_LARGE', 'Unique value too large');
          return;
        }
        this.submit(fn, unique, data, Priority.NORMAL, type === PacketType.SUBMIT_REDUCE_JOB_BACKGROUND, bytes(reducer));
        return;
      }
      case PacketType.GET_STATUS:
      case PacketType.GET_STATUS_UNIQUE: {
        // gearmand drops the connection when the handle or unique does not fit its 64-byte buffer.
        const [handleOrUnique] = args;
        const key = cString(handleOrUnique);
        const what = type === PacketType.GET_STATUS ? 'job handle' : 'unique id';
        if (key.length > MAX_LOOKUP_BYTES)
          this.refuse(ProtocolErrorCode.ARGUMENT_TOO_LARGE, `${PacketType[type]} ${what} is over ${MAX_LOOKUP_BYTES} bytes`);
        else if (type === PacketType.GET_STATUS) this.sendStatus(key);
        else this.sendStatusUnique(key);
        return;
      }
      case PacketType.OPTION_REQ: {
        const [option] = args;
        const name = asciiLowerCase(cString(option));
        // `results`: this server keeps results and answers gearman.result (gearmand refuses the option).
        if (name === 'results' && this.context.reserved) {
          this.send(encodeByteStringResponse(PacketType.OPTION_RES, [option]));
          return;
        }
        if (name !== 'exceptions') {
          this.sendError('UNKNOWN_OPTION', 'Server does not recognize given option');
          return;
        }
        this.exceptions = true;
        this.send(encodeByteStringResponse(PacketType.OPTION_RES, [option]));
        return;
      }
      case PacketType.SET_CLIENT_ID: {
        const [id] = args;
        this.clientId = cString(id).slice(0, MAX_CLIENT_ID_BYTES);
        return;
      }
      case PacketType.CAN_DO: {
        const [fn] = args;
        broker.canDo(this.state, bytes(fn), 0);
        return;
      }
      case PacketType.CAN_DO_TIMEOUT: {
        const [fn, timeout] = args;
        const text = bytes(timeout);
        const timeoutMs = canDoTimeout(text);
        // gearmand 2.0 drops a connection whose timeout is over 20 characters or outside strtol's range.
        if (timeoutMs === undefined) {
          this.refuse(ProtocolErrorCode.ARGUMENT_TOO_LARGE, `CAN_DO_TIMEOUT timeout ${JSON.stringify(text)} is out of range`);
          return;
        }
        broker.canDo(this.state, bytes(fn), timeoutMs);
        return;
      }
      case PacketType.CANT_DO: {
        const [fn] = args;
        broker.cantDo(this.state, bytes(fn));
        return;
      }
      case PacketType.RESET_ABILITIES:
        broker.resetAbilities(this.state);
        return;
      case PacketType.PRE_SLEEP:
        broker.preSleep(this.state);
        return;
      case PacketType.GRAB_JOB:
      case PacketType.GRAB_JOB_UNIQ:
      case PacketType.GRAB_JOB_ALL:
        broker.grab(this.state, type);
        return;
      case PacketType.WORK_DATA:
      case PacketType.WORK_WARNING:
      case PacketType.WORK_STATUS: {
        const [handle] = args;
        broker.workUpdate(this.state, type, bytes(handle), args);
        return;
      }
      case PacketType.WORK_COMPLETE:
      case PacketType.WORK_FAIL:
      case PacketType.WORK_EXCEPTION: {
        // WORK_FAIL's one argument may carry bytes after a NUL: the handle is read up to it.
        const handle = cString(args[0]);
        if (type === PacketType.WORK_FAIL && handle.length > MAX_LOOKUP_BYTES) {
          this.sendError('ARGUMENT_TOO_LARGE', 'Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf');
          return;
        }
        broker.workEnd(this.state, type, handle, args);
        return;
      }
      default:
        // ALL_YOURS and anything else a server does not take (as gearmand answers).
        this.sendError('INVALID_COMMAND', 'Command not expected');
    }
  }

  private submit(fn: Buffer, unique: Buffer, data: Buffer, priority: Priority, background: boolean, reducer = '', runAt = 0): void {
    if (unique.length > MAX_UNIQUE_BYTES) {
      this.sendError('ARGUMENT_TOO_LARGE', 'Unique value too large');
      return;
    }
    const request = { functionName: bytes(fn), unique: bytes(unique), data: bytes(data), priority, background, reducer, runAt };
    if (this.context.reserved?.submit(this, request)) return;
    this.context.broker.submit(this.state, request);
  }

  private sendStatus(handle: string): void {
    const job = this.context.broker.findByHandle(handle);
    const run = job?.run;
    const fields = [handle, job ? '1' : '0', run ? '1' : '0', String(run?.numerator ?? 0), String(run?.denominator ?? 0)];
    this.send(encodeByteStringResponse(PacketType.STATUS_RES, fields));
  }

  private sendStatusUnique(unique: string): void {
    const job = this.context.broker.findByUnique(unique);
    const run = job?.run;
    const fields = [
      unique,
      job ? '1' : '0',
      run ? '1' : '0',
      String(run?.numerator ?? 0),
      String(run?.denominator ?? 0),
      String(job?.clients?.length ?? 0),
    ];
    this.send(encodeByteStringResponse(PacketType.STATUS_RES_UNIQUE, fields));
  }
}
