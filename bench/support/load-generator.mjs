// A Gearman load generator on raw codec connections: the same code drives gearmand and our
// job server, so the two are measured alike. Clients and workers all live in this process.
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { encodeRequest, PacketDecoder, PacketType } from '../../dist/esm/protocol/index.js';

const P = PacketType;

/** One connection: decoded packets go to onPacket(type, args, connection); writes are corked per tick. */
class Connection {
  constructor(socket, onPacket) {
    this.socket = socket;
    this.decoder = new PacketDecoder({ accept: 'response' });
    this.corked = false;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.decoder.feed(chunk, (frame) => frame.kind === 'packet' && onPacket(frame.type, frame.args, this)));
    socket.on('error', () => undefined);
  }

  /** `tls`: TLS connection options (the server's CA) to connect over TLS; undefined for plain TCP. */
  static open(port, onPacket, tls) {
    return new Promise((resolve, reject) => {
      const socket = tls ? tlsConnect({ host: '127.0.0.1', port, ...tls }) : connect(port, '127.0.0.1');
      socket.once(tls ? 'secureConnect' : 'connect', () => resolve(new Connection(socket, onPacket)));
      socket.once('error', reject);
    });
  }

  write(bytes) {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(bytes);
  }

  close() {
    this.socket.destroy();
  }
}

const GRAB = encodeRequest(P.GRAB_JOB);
const PRE_SLEEP = encodeRequest(P.PRE_SLEEP);

/**
 * A worker that answers every job at once: WORK_COMPLETE and the next GRAB_JOB in one write,
 * PRE_SLEEP on NO_JOB, GRAB_JOB on NOOP. Calls onDone for each job completed.
 */
async function startWorker(port, fn, onDone, tls) {
  const worker = await Connection.open(
    port,
    (type, args, connection) => {
      if (type === P.JOB_ASSIGN) {
        connection.write(encodeRequest(P.WORK_COMPLETE, args[0], args[2]));
        connection.write(GRAB);
        onDone();
      } else if (type === P.NO_JOB) {
        connection.write(PRE_SLEEP);
      } else if (type === P.NOOP) {
        connection.write(GRAB);
      }
    },
    tls,
  );
  worker.write(encodeRequest(P.CAN_DO, fn));
  worker.write(GRAB);
  return worker;
}

/** Foreground round trips: each client keeps `window` jobs in flight for `durationMs`; returns jobs/s. `tls`: connect over TLS with these options. */
export async function foregroundRoundTrips(
  port,
  { clients = 8, workers = 4, payloadBytes = 100, window = 1, durationMs = 4000, tls } = {},
) {
  const fn = `fg-${randomUUID()}`;
  const submit = encodeRequest(P.SUBMIT_JOB, fn, '', Buffer.alloc(payloadBytes, 0x61));
  const workerConnections = await Promise.all(Array.from({ length: workers }, () => startWorker(port, fn, () => undefined, tls)));
  let completed = 0;
  let running = true;
  const clientConnections = await Promise.all(
    Array.from({ length: clients }, () =>
      Connection.open(
        port,
        (type, _args, client) => {
          if (type !== P.WORK_COMPLETE) return;
          completed++;
          if (running) client.write(submit);
        },
        tls,
      ),
    ),
  );
  const warmup = 500;
  for (const c of clientConnections) for (let i = 0; i < window; i++) c.write(submit);
  await sleep(warmup);
  const start = process.hrtime.bigint();
  const startCount = completed;
  await sleep(durationMs);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = (completed - startCount) / seconds;
  running = false;
  await sleep(200);
  for (const c of [...clientConnections, ...workerConnections]) c.close();
  return rate;
}

/**
 * Background submits of `jobs` jobs (payload of `payloadBytes`, a 36-byte unique each) from
 * `clients` connections with `window` submits in flight each; returns jobs/s and the function name.
 */
export async function backgroundSubmits(port, { jobs = 200_000, clients = 4, window = 200, payloadBytes = 100, tls } = {}) {
  const fn = `bg-${randomUUID()}`;
  const payload = Buffer.alloc(payloadBytes, 0x62);
  let sent = 0;
  let created = 0;
  let finish;
  const done = new Promise((resolve) => (finish = resolve));
  const next = (c) => {
    if (sent >= jobs) return;
    sent++;
    c.write(encodeRequest(P.SUBMIT_JOB_BG, fn, randomUUID(), payload));
  };
  const connections = [];
  for (let i = 0; i < clients; i++) {
    const c = await Connection.open(
      port,
      (type, _args, client) => {
        if (type === P.JOB_CREATED) {
          created++;
          if (created === jobs) finish();
          else next(client);
        } else if (type === P.ERROR) {
          throw new Error('the server refused a submit');
        }
      },
      tls,
    );
    connections.push(c);
  }
  const start = process.hrtime.bigint();
  for (const c of connections) for (let i = 0; i < window; i++) next(c);
  await done;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  for (const c of connections) c.close();
  return { rate: jobs / seconds, fn };
}

/** Drains `jobs` queued jobs of `fn` with `workers` workers; returns jobs/s. */
export async function backgroundDrain(port, fn, jobs, { workers = 4, tls } = {}) {
  let completed = 0;
  let finish;
  const done = new Promise((resolve) => (finish = resolve));
  const start = process.hrtime.bigint();
  const connections = await Promise.all(
    Array.from({ length: workers }, () =>
      startWorker(
        port,
        fn,
        () => {
          completed++;
          if (completed === jobs) finish();
        },
        tls,
      ),
    ),
  );
  await done;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await sleep(100);
  for (const c of connections) c.close();
  return jobs / seconds;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
