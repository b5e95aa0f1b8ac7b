// Codec throughput: encoding and decoding SUBMIT_JOB packets with 100-byte and 1 MiB payloads.
// Decoding is fed the way a socket delivers bytes: a long stream cut into 64 KiB chunks.
// Each figure is measured for a fixed time after a short warm-up; run `npm run bench -- codec`.
import { encodeRequest, PacketDecoder, PacketType } from '../dist/esm/protocol/index.js';

const MEASURE_MS = 2000;
const WARMUP_MS = 300;
const CHUNK = 64 * 1024;
const MiB = 1024 * 1024;

/** Calls `round` (which returns how many packets and bytes it handled) until `ms` have passed. */
function timed(ms, round) {
  let packets = 0;
  let bytes = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < limit) {
    const done = round();
    packets += done.packets;
    bytes += done.bytes;
    elapsed = process.hrtime.bigint() - start;
  }
  const seconds = Number(elapsed) / 1e9;
  return { packetsPerSecond: packets / seconds, mibPerSecond: bytes / MiB / seconds };
}

function measure(round) {
  timed(WARMUP_MS, round);
  return timed(MEASURE_MS, round);
}

function encodeRound(data, count) {
  const size = encodeRequest(PacketType.SUBMIT_JOB, 'resize_image', 'unique-0123456789', data).length;
  return () => {
    let checksum = 0;
    for (let i = 0; i < count; i++) checksum += encodeRequest(PacketType.SUBMIT_JOB, 'resize_image', 'unique-0123456789', data).length;
    if (checksum !== size * count) throw new Error('encoder produced packets of the wrong size');
    return { packets: count, bytes: size * count };
  };
}

function decodeRound(data, count) {
  const stream = Buffer.concat(
    Array.from({ length: count }, () => encodeRequest(PacketType.SUBMIT_JOB, 'resize_image', 'unique-0123456789', data)),
  );
  const chunks = [];
  for (let offset = 0; offset < stream.length; offset += CHUNK) chunks.push(stream.subarray(offset, offset + CHUNK));
  return () => {
    const decoder = new PacketDecoder({ accept: 'request' });
    let packets = 0;
    let payload = 0;
    const onFrame = (frame) => {
      packets++;
      payload += frame.args[2].length;
    };
    for (const chunk of chunks) decoder.feed(chunk, onFrame);
    if (packets !== count || payload !== data.length * count) throw new Error('decoder lost packets');
    return { packets, bytes: stream.length };
  };
}

const small = Buffer.alloc(100, 0x61);
const large = Buffer.alloc(MiB, 0x62);
const rows = [
  ['encode', '100 B', measure(encodeRound(small, 10_000))],
  ['decode', '100 B', measure(decodeRound(small, 10_000))],
  ['encode', '1 MiB', measure(encodeRound(large, 4))],
  ['decode', '1 MiB', measure(decodeRound(large, 16))],
];

const number = (value, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
console.log(
  `Node ${process.version}, SUBMIT_JOB packets (function 12 B, unique 17 B); decode fed in 64 KiB chunks; ${MEASURE_MS / 1000} s each`,
);
console.log('operation  payload    packets/s        MiB/s');
for (const [operation, payload, result] of rows) {
  console.log(
    `${operation.padEnd(10)} ${payload.padEnd(7)} ${number(result.packetsPerSecond).padStart(12)} ${number(result.mibPerSecond, 1).padStart(12)}`,
  );
}
