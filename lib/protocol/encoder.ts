import { ARGUMENT_LIMITS, allowsMagic, Magic, PacketType, packetSpec } from './packet-types.js';
import { GearmanProtocolError, ProtocolErrorCode } from './protocol-error.js';

/** An argument as callers hold it: text is written as UTF-8. */
export type PacketArgument = Buffer | string;

export const HEADER_SIZE = 12;

const REQ_BYTES = Buffer.from('\0REQ', 'latin1');
const RES_BYTES = Buffer.from('\0RES', 'latin1');

function byteLength(arg: PacketArgument): number {
  return typeof arg === 'string' ? Buffer.byteLength(arg, 'utf8') : arg.length;
}

function containsNul(arg: PacketArgument): boolean {
  return typeof arg === 'string' ? arg.includes('\0') : arg.includes(0);
}

/**
 * Encodes one binary packet into a single new buffer.
 * Checks the type and its magic, the argument count against the packet table, the fixed size
 * limits, and that no argument but the last holds a NUL; throws GearmanProtocolError naming the
 * packet and the argument.
 */
export function encodePacket(magic: Magic, type: PacketType, args: readonly PacketArgument[] = []): Buffer {
  const magicBytes = magic === Magic.REQ ? REQ_BYTES : magic === Magic.RES ? RES_BYTES : undefined;
  if (!magicBytes) throw new GearmanProtocolError(ProtocolErrorCode.BAD_MAGIC, `Unknown magic ${JSON.stringify(magic)}`);
  const spec = packetSpec(type);
  if (!spec || spec.direction === 'unused') {
    throw new GearmanProtocolError(ProtocolErrorCode.UNKNOWN_PACKET_TYPE, `Unknown packet type ${type}`);
  }
  if (!allowsMagic(spec, magic)) {
    throw new GearmanProtocolError(ProtocolErrorCode.UNEXPECTED_MAGIC, `${spec.name} cannot travel with ${magic} magic`, spec.name);
  }
  if (args.length !== spec.args.length) {
    throw new GearmanProtocolError(
      ProtocolErrorCode.ARGUMENT_COUNT,
      `${spec.name} takes ${spec.args.length} argument(s) (${spec.args.join(', ') || 'none'}), got ${args.length}`,
      spec.name,
      spec.args[args.length], // the first one missing, if any
    );
  }
  const last = args.length - 1;
  let payloadLength = last > 0 ? last : 0; // one NUL between each pair of arguments
  for (let i = 0; i <= last; i++) {
    const arg = args[i];
    const name = spec.args[i];
    const size = byteLength(arg);
    const limit = ARGUMENT_LIMITS[name];
    if (limit !== undefined && size > limit) {
      throw new GearmanProtocolError(
        ProtocolErrorCode.ARGUMENT_TOO_LARGE,
        `${spec.name}: ${name} is ${size} bytes, the limit is ${limit}`,
        spec.name,
        name,
      );
    }
    if (i < last && containsNul(arg)) {
      throw new GearmanProtocolError(
        ProtocolErrorCode.ARGUMENT_CONTAINS_NUL,
        `${spec.name}: ${name} must not contain a NUL byte`,
        spec.name,
        name,
      );
    }
    payloadLength += size;
  }
  if (payloadLength > 0xffffffff) {
    throw new GearmanProtocolError(
      ProtocolErrorCode.PACKET_TOO_LARGE,
      `${spec.name}: payload of ${payloadLength} bytes does not fit the 32-bit length`,
      spec.name,
    );
  }

  const packet = Buffer.allocUnsafe(HEADER_SIZE + payloadLength);
  magicBytes.copy(packet, 0);
  packet.writeUInt32BE(type, 4);
  packet.writeUInt32BE(payloadLength, 8);
  let offset = HEADER_SIZE;
  for (let i = 0; i <= last; i++) {
    const arg = args[i];
    offset += typeof arg === 'string' ? packet.write(arg, offset, 'utf8') : arg.copy(packet, offset);
    if (i < last) packet[offset++] = 0;
  }
  return packet;
}

/** A request packet (client or worker toward the job server). */
export function encodeRequest(type: PacketType, ...args: PacketArgument[]): Buffer {
  return encodePacket(Magic.REQ, type, args);
}

/** A response packet (job server toward a client or worker). */
export function encodeResponse(type: PacketType, ...args: PacketArgument[]): Buffer {
  return encodePacket(Magic.RES, type, args);
}

/** A job server's argument: a Buffer, or a byte string (latin1: one character a byte), the form it keeps names, uniques and payloads in. */
export type ByteStringArgument = Buffer | string;

/**
 * Encodes a response the way a job server relays what it accepted: strings are written as byte
 * strings (latin1), not UTF-8, in one allocation. It checks the type (a response or a WORK_*
 * packet), the argument count and that no argument but the last holds a NUL, and throws
 * GearmanProtocolError otherwise; it does not apply the size limits of ARGUMENT_LIMITS, which are
 * libgearman's: gearmand accepts and relays larger function names and handles, and so does a job server.
 */
export function encodeByteStringResponse(type: PacketType, args: readonly ByteStringArgument[]): Buffer {
  const spec = packetSpec(type);
  if (!spec || !allowsMagic(spec, Magic.RES)) {
    throw new GearmanProtocolError(ProtocolErrorCode.UNEXPECTED_MAGIC, `${spec?.name ?? `Packet type ${type}`} is not a response`);
  }
  const last = args.length - 1;
  if (args.length !== spec.args.length) {
    throw new GearmanProtocolError(
      ProtocolErrorCode.ARGUMENT_COUNT,
      `${spec.name} takes ${spec.args.length} argument(s), got ${args.length}`,
      spec.name,
    );
  }
  let payloadLength = last > 0 ? last : 0;
  for (let i = 0; i <= last; i++) {
    const arg = args[i];
    if (i < last && containsNul(arg)) {
      throw new GearmanProtocolError(
        ProtocolErrorCode.ARGUMENT_CONTAINS_NUL,
        `${spec.name}: ${spec.args[i]} must not contain a NUL byte`,
        spec.name,
        spec.args[i],
      );
    }
    payloadLength += arg.length;
  }
  const packet = Buffer.allocUnsafe(HEADER_SIZE + payloadLength);
  RES_BYTES.copy(packet, 0);
  packet.writeUInt32BE(type, 4);
  packet.writeUInt32BE(payloadLength, 8);
  let offset = HEADER_SIZE;
  for (let i = 0; i <= last; i++) {
    const arg = args[i];
    offset += typeof arg === 'string' ? packet.write(arg, offset, 'latin1') : arg.copy(packet, offset);
    if (i < last) packet[offset++] = 0;
  }
  return packet;
}
