// A hostile or unlucky Gearman peer, in a process of its own so that it competes with the job server
// and the well-behaved clients as a real one would (used by bench/limits.bench.mjs and by
// test/job-server/under-load.spec.ts). Raw bytes, no dependency.
//   node flood-peer.mjs PORT MODE [N]
// Modes:
//   echo-unread BYTES  ECHO_REQ of 1000 bytes, never reading a reply, until BYTES are written or the
//                      socket stays backed up for 2 s; then holds the connection.
//   echo-read          ECHO_REQ, 256 in flight, reading every reply: the fastest one connection asks.
//   submit-bg          SUBMIT_JOB_BG (100-byte payload, no unique), 256 in flight, reading every reply.
//   echo-blast, submit-bg-blast
//                      the same requests written as fast as the socket takes them, without waiting
//                      for replies (which are read and counted).
//   connections N      opens N connections and holds them.
//   slowloris N        opens N connections, each sending half a header and nothing more.
// Prints one JSON line per second: what it did so far ({ written, replies, errors, open, closed, refused }).
import { connect } from 'node:net';

const [port, mode, count] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4] ?? 0)];
const stats = { written: 0, replies: 0, errors: 0, open: 0, closed: 0, refused: 0 };

function packet(type, ...args) {
  const payload = Buffer.from(args.join('\0'), 'latin1');
  const header = Buffer.alloc(12);
  header.write('\0REQ', 0, 'latin1');
  header.writeUInt32BE(type, 4);
  header.writeUInt32BE(payload.length, 8);
  return Buffer.concat([header, payload]);
}

const ECHO_REQ = 16;
const SUBMIT_JOB_BG = 18;
const ERROR = 19;

function open() {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      stats.open++;
      resolve(socket);
    });
    socket.once('close', () => {
      stats.closed++;
      resolve(socket);
    });
  });
}

/** Counts reply packets (and ERROR packets) in a byte stream. */
function countReplies(socket, onReply) {
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let offset = 0;
    while (pending.length - offset >= 12) {
      const length = pending.readUInt32BE(offset + 8);
      if (pending.length - offset < 12 + length) break;
      const type = pending.readUInt32BE(offset + 4);
      if (type === ERROR) {
        stats.errors++;
        const text = pending.toString('latin1', offset + 12, offset + 12 + length).replace('\0', ' ');
        if (text.startsWith('TOO_MANY_CONNECTIONS')) stats.refused++;
        stats.lastError = text;
      } else {
        stats.replies++;
      }
      offset += 12 + length;
      onReply?.();
    }
    pending = pending.subarray(offset);
  });
}

async function pipelined(request) {
  const socket = await open();
  let inFlight = 0;
  const fill = () => {
    while (inFlight < 256) {
      socket.write(request);
      stats.written += request.length;
      inFlight++;
    }
  };
  countReplies(socket, () => {
    inFlight--;
    if (inFlight < 128) fill();
  });
  fill();
}

/** Writes the request whenever the socket takes more, reading (and counting) replies. */
async function blast(request) {
  const socket = await open();
  countReplies(socket);
  const batch = Buffer.concat(Array.from({ length: 64 }, () => request));
  const fill = () => {
    while (socket.write(batch)) stats.written += batch.length;
    stats.written += batch.length;
  };
  socket.on('drain', fill);
  fill();
}

async function echoUnread(limit) {
  const socket = await open();
  socket.pause();
  const request = packet(ECHO_REQ, 'e'.repeat(1000));
  for (;;) {
    while (stats.written < limit && socket.write(request)) stats.written += request.length;
    if (stats.written >= limit) return;
    stats.written += request.length;
    const drained = await Promise.race([
      new Promise((resolve) => socket.once('drain', () => resolve(true))),
      new Promise((resolve) => setTimeout(() => resolve(false), 2000)),
    ]);
    if (!drained) return;
  }
}

async function connections(n, first) {
  const sockets = [];
  for (let i = 0; i < n; i++) {
    const socket = await open();
    countReplies(socket);
    if (first) socket.write(first);
    sockets.push(socket);
  }
}

setInterval(() => process.stdout.write(`${JSON.stringify(stats)}\n`), 1000);
switch (mode) {
  case 'echo-unread':
    await echoUnread(count);
    break;
  case 'echo-read':
    await pipelined(packet(ECHO_REQ, 'e'.repeat(100)));
    break;
  case 'submit-bg':
    await pipelined(packet(SUBMIT_JOB_BG, 'flood', '', 'b'.repeat(100)));
    break;
  case 'echo-blast':
    await blast(packet(ECHO_REQ, 'e'.repeat(100)));
    break;
  case 'submit-bg-blast':
    await blast(packet(SUBMIT_JOB_BG, 'flood', '', 'b'.repeat(100)));
    break;
  case 'connections':
    await connections(count);
    break;
  case 'slowloris':
    await connections(count, packet(ECHO_REQ, 'x').subarray(0, 6));
    break;
  default:
    console.error(`unknown mode ${mode}`);
    process.exit(2);
}
