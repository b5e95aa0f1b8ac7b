import { HEADER_SIZE } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';

const RES_MAGIC = Buffer.from('\0RES', 'latin1');

/**
 * Encodes a response whose arguments are byte strings (latin1, one character a byte), the form
 * the job server keeps names, uniques and payloads in: one allocation, no UTF-8 round trip.
 * The packet table's checks are not repeated: these arguments come from packets already checked.
 */
export function encodeByteStringResponse(type: PacketType, args: readonly string[]): Buffer {
  let length = args.length > 0 ? args.length - 1 : 0;
  for (const arg of args) length += arg.length;
  const packet = Buffer.allocUnsafe(HEADER_SIZE + length);
  RES_MAGIC.copy(packet, 0);
  packet.writeUInt32BE(type, 4);
  packet.writeUInt32BE(length, 8);
  let offset = HEADER_SIZE;
  for (let i = 0; i < args.length; i++) {
    if (i > 0) packet[offset++] = 0;
    offset += packet.write(args[i], offset, 'latin1');
  }
  return packet;
}

/** A payload-less response (NOOP, NO_JOB). */
export function encodeEmptyResponse(type: PacketType): Buffer {
  return encodeByteStringResponse(type, []);
}
