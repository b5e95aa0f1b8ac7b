import { HEADER_SIZE } from './encoder.js';
import { allowsMagic, Magic, PacketSpec, PacketType, packetSpec } from './packet-types.js';
import { GearmanProtocolError, ProtocolErrorCode } from './protocol-error.js';

/** A decoded binary packet. Arguments may be views into the chunk they arrived in: copy what you keep long. */
export interface Packet {
  readonly kind: 'packet';
  readonly magic: Magic;
  readonly type: PacketType;
  readonly args: Buffer[];
}

/** One line of the text admin protocol, without its `\n` or a trailing `\r`, decoded as `adminEncoding` says. */
export interface AdminLine {
  readonly kind: 'admin';
  readonly line: string;
}

export type Frame = Packet | AdminLine;

/** Which magic the peer may send: a job server accepts requests, clients and workers responses. */
export type AcceptedMagic = 'request' | 'response' | 'any';

export interface DecoderOptions {
  accept?: AcceptedMagic;
  /** Largest payload a header may announce, in bytes; checked before anything is buffered. */
  maxPacketSize?: number;
  /** Longest admin text line, in bytes, before its newline. */
  maxAdminLineLength?: number;
  /** How admin lines are turned into text: 'utf8' (default), or 'latin1' for one character a byte, losslessly. */
  adminEncoding?: 'utf8' | 'latin1';
  /**
   * Whether a packet type must travel with its own magic (default true). When false, any type of
   * the table, the unused code 5 included, is delivered with either magic and the consumer decides
   * (a job server answers a misdirected packet with an ERROR and keeps the connection, as gearmand).
   */
  checkDirection?: boolean;
  /**
   * A payload on a packet that takes no arguments (GRAB_JOB, PRE_SLEEP …): 'error' (default) or
   * 'ignore', dropping it as gearmand does.
   */
  extraPayload?: 'error' | 'ignore';
}

export const DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024;
export const DEFAULT_MAX_ADMIN_LINE_LENGTH = 64 * 1024;

const enum State {
  FrameStart,
  Header,
  Payload,
  AdminText,
}

const NUL = 0;
const NEWLINE = 10;
const CARRIAGE_RETURN = 13;
const MAGIC_PREFIX = [NUL, 0x52 /* R */, 0x45 /* E */];
const EMPTY = Buffer.alloc(0);

/**
 * Turns a byte stream into packets and admin lines, whatever the chunking.
 * A payload split over chunks is copied once into a buffer of its exact size, reserved when its
 * header arrives (maxPacketSize bounds it); a packet whole in one chunk is not copied at all.
 * After a protocol error the decoder stays failed: every later feed throws the same
 * GearmanProtocolError, since the stream position is lost.
 */
export class PacketDecoder {
  private readonly accept: AcceptedMagic;
  private readonly maxPacketSize: number;
  private readonly maxAdminLineLength: number;
  private readonly checkDirection: boolean;
  private readonly ignoreExtraPayload: boolean;
  private readonly adminEncoding: 'utf8' | 'latin1';

  private state = State.FrameStart;
  private failure: GearmanProtocolError | undefined;

  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;

  private spec!: PacketSpec;
  private magic!: Magic;
  private payload: Buffer | undefined;
  private payloadFill = 0;

  private textPieces: Buffer[] = [];
  private textLength = 0;

  /** Frames the current feed may still deliver. */
  private framesLeft = 0;

  /** Throws RangeError for options that would silently disable a limit (NaN, negative, fractional). */
  constructor(options: DecoderOptions = {}) {
    this.accept = options.accept ?? 'any';
    this.maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
    this.maxAdminLineLength = options.maxAdminLineLength ?? DEFAULT_MAX_ADMIN_LINE_LENGTH;
    this.checkDirection = options.checkDirection ?? true;
    this.ignoreExtraPayload = options.extraPayload === 'ignore';
    this.adminEncoding = options.adminEncoding ?? 'utf8';
    if (this.adminEncoding !== 'utf8' && this.adminEncoding !== 'latin1') {
      throw new RangeError(`adminEncoding must be 'utf8' or 'latin1', got ${JSON.stringify(options.adminEncoding)}`);
    }
    if (options.extraPayload !== undefined && options.extraPayload !== 'error' && options.extraPayload !== 'ignore') {
      throw new RangeError(`extraPayload must be 'error' or 'ignore', got ${JSON.stringify(options.extraPayload)}`);
    }
    if (this.accept !== 'request' && this.accept !== 'response' && this.accept !== 'any') {
      throw new RangeError(`accept must be 'request', 'response' or 'any', got ${JSON.stringify(options.accept)}`);
    }
    for (const [name, value] of [
      ['maxPacketSize', this.maxPacketSize],
      ['maxAdminLineLength', this.maxAdminLineLength],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a whole number of bytes, got ${value}`);
    }
  }

  /** Bytes held for a frame that has not arrived whole yet. */
  get bufferedBytes(): number {
    return this.headerFill + this.payloadFill + this.textLength;
  }

  /** Whether the stream stopped between two frames (nothing partial is held). */
  get isAtFrameBoundary(): boolean {
    return this.state === State.FrameStart;
  }

  /**
   * Decodes a chunk, calling onFrame for each complete frame in order, at most `maxFrames` of them.
   * Returns how many bytes of the chunk it consumed: the whole chunk, or, once `maxFrames` frames
   * were delivered, the bytes up to the end of the last one (feed the rest later; the decoder is
   * then between two frames). Throws GearmanProtocolError.
   * The decoder keeps no view of the chunk once this returns (partial frames are copied), so the
   * caller may reuse it; only the arguments of the frames handed to onFrame may view it.
   * An exception thrown by onFrame propagates and drops the rest of the chunk.
   */
  feed(chunk: Buffer, onFrame: (frame: Frame) => void, maxFrames = Infinity): number {
    if (this.failure) throw this.failure;
    let offset = 0;
    const end = chunk.length;
    this.framesLeft = maxFrames;
    while (offset < end && this.framesLeft > 0) {
      switch (this.state) {
        case State.FrameStart:
          if (chunk[offset] !== NUL) {
            this.state = State.AdminText;
          } else if (end - offset >= HEADER_SIZE) {
            offset = this.readWholeHeader(chunk, offset, onFrame);
          } else {
            this.state = State.Header;
          }
          break;
        case State.Header:
          offset = this.readPartialHeader(chunk, offset, onFrame);
          break;
        case State.Payload:
          offset = this.readPayload(chunk, offset, onFrame);
          break;
        case State.AdminText:
          offset = this.readAdminText(chunk, offset, onFrame);
          break;
      }
    }
    return offset;
  }

  private deliver(onFrame: (frame: Frame) => void, frame: Frame): void {
    this.framesLeft--;
    onFrame(frame);
  }

  private readWholeHeader(chunk: Buffer, offset: number, onFrame: (frame: Frame) => void): number {
    const length = this.checkHeader(chunk, offset, HEADER_SIZE);
    const start = offset + HEADER_SIZE;
    if (chunk.length - start >= length) {
      this.deliver(onFrame, this.packet(chunk.subarray(start, start + length)));
      return start + length;
    }
    this.beginPayload(length);
    return start;
  }

  private readPartialHeader(chunk: Buffer, offset: number, onFrame: (frame: Frame) => void): number {
    const take = Math.min(HEADER_SIZE - this.headerFill, chunk.length - offset);
    chunk.copy(this.header, this.headerFill, offset, offset + take);
    this.headerFill += take;
    // Checked on every piece, so a bad magic or type fails without waiting for the whole header.
    const length = this.checkHeader(this.header, 0, this.headerFill);
    if (this.headerFill < HEADER_SIZE) return offset + take;
    this.headerFill = 0;
    if (length === 0) {
      this.state = State.FrameStart;
      this.deliver(onFrame, this.packet(EMPTY));
    } else {
      this.beginPayload(length);
    }
    return offset + take;
  }

  private beginPayload(length: number): void {
    this.payload = Buffer.allocUnsafe(length);
    this.payloadFill = 0;
    this.state = State.Payload;
  }

  private readPayload(chunk: Buffer, offset: number, onFrame: (frame: Frame) => void): number {
    const payload = this.payload!;
    const take = Math.min(payload.length - this.payloadFill, chunk.length - offset);
    chunk.copy(payload, this.payloadFill, offset, offset + take);
    this.payloadFill += take;
    if (this.payloadFill === payload.length) {
      this.payload = undefined;
      this.payloadFill = 0;
      this.state = State.FrameStart;
      this.deliver(onFrame, this.packet(payload));
    }
    return offset + take;
  }

  private readAdminText(chunk: Buffer, offset: number, onFrame: (frame: Frame) => void): number {
    const newline = chunk.indexOf(NEWLINE, offset);
    const pieceEnd = newline === -1 ? chunk.length : newline;
    this.textLength += pieceEnd - offset;
    if (this.textLength > this.maxAdminLineLength) {
      throw this.fail(ProtocolErrorCode.ADMIN_LINE_TOO_LONG, `Admin line longer than ${this.maxAdminLineLength} bytes`);
    }
    if (newline === -1) {
      // Copied: the line goes on in a later chunk, and the caller may reuse this one.
      if (pieceEnd > offset) this.textPieces.push(Buffer.from(chunk.subarray(offset, pieceEnd)));
      return chunk.length;
    }

    const tail = chunk.subarray(offset, newline);
    let bytes = this.textPieces.length === 0 ? tail : Buffer.concat([...this.textPieces, tail], this.textLength);
    if (bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN) bytes = bytes.subarray(0, bytes.length - 1);
    this.textPieces = [];
    this.textLength = 0;
    this.state = State.FrameStart;
    this.deliver(onFrame, { kind: 'admin', line: bytes.toString(this.adminEncoding) });
    return newline + 1;
  }

  /**
   * Validates the first `available` bytes of a header (all 12 once whole). Returns the payload
   * length when the header is whole, -1 before; sets the spec and magic of the packet.
   */
  private checkHeader(bytes: Buffer, at: number, available: number): number {
    for (let i = 0; i < Math.min(available, 3); i++) {
      if (bytes[at + i] !== MAGIC_PREFIX[i]) throw this.badMagic(bytes, at, available);
    }
    if (available < 4) return -1;
    const last = bytes[at + 3];
    const magic = last === 0x51 /* Q */ ? Magic.REQ : last === 0x53 /* S */ ? Magic.RES : undefined;
    if (magic === undefined) throw this.badMagic(bytes, at, available);
    if ((this.accept === 'request' && magic !== Magic.REQ) || (this.accept === 'response' && magic !== Magic.RES)) {
      throw this.fail(ProtocolErrorCode.UNEXPECTED_MAGIC, `Got ${magic} magic where only ${this.accept}s are expected`);
    }
    if (available < 8) return -1;
    const type = bytes.readUInt32BE(at + 4);
    const spec = packetSpec(type);
    if (!spec || (spec.direction === 'unused' && this.checkDirection)) {
      throw this.fail(ProtocolErrorCode.UNKNOWN_PACKET_TYPE, `Unknown packet type ${type}`);
    }
    if (this.checkDirection && !allowsMagic(spec, magic)) {
      throw this.fail(ProtocolErrorCode.UNEXPECTED_MAGIC, `${spec.name} cannot travel with ${magic} magic`, spec.name);
    }
    if (available < HEADER_SIZE) return -1;
    const length = bytes.readUInt32BE(at + 8);
    if (length > this.maxPacketSize) {
      throw this.fail(
        ProtocolErrorCode.PACKET_TOO_LARGE,
        `${spec.name} announces ${length} payload bytes, the limit is ${this.maxPacketSize}`,
        spec.name,
      );
    }
    this.spec = spec;
    this.magic = magic;
    return length;
  }

  private badMagic(bytes: Buffer, at: number, available: number): GearmanProtocolError {
    const seen = bytes.toString('latin1', at, at + Math.min(available, 4));
    return this.fail(ProtocolErrorCode.BAD_MAGIC, `Bad magic ${JSON.stringify(seen)}, expected "\\u0000REQ" or "\\u0000RES"`);
  }

  private packet(payload: Buffer): Packet {
    return { kind: 'packet', magic: this.magic, type: this.spec.type, args: this.splitArguments(payload) };
  }

  private splitArguments(payload: Buffer): Buffer[] {
    const names = this.spec.args;
    if (names.length === 0) {
      if (payload.length > 0 && !this.ignoreExtraPayload) {
        throw this.fail(
          ProtocolErrorCode.ARGUMENT_COUNT,
          `${this.spec.name} takes no arguments but carries ${payload.length} bytes`,
          this.spec.name,
        );
      }
      return [];
    }
    const args: Buffer[] = new Array(names.length);
    let start = 0;
    for (let i = 0; i < names.length - 1; i++) {
      const nul = payload.indexOf(NUL, start);
      if (nul === -1) {
        throw this.fail(
          ProtocolErrorCode.ARGUMENT_COUNT,
          `${this.spec.name} takes ${names.length} arguments, the payload ends before ${names[i + 1]}`,
          this.spec.name,
          names[i + 1],
        );
      }
      args[i] = payload.subarray(start, nul);
      start = nul + 1;
    }
    args[names.length - 1] = payload.subarray(start);
    return args;
  }

  private fail(code: ProtocolErrorCode, message: string, packet?: string, argument?: string): GearmanProtocolError {
    this.failure = new GearmanProtocolError(code, message, packet, argument);
    this.headerFill = 0;
    this.payload = undefined;
    this.payloadFill = 0;
    this.textPieces = [];
    this.textLength = 0;
    return this.failure;
  }
}
