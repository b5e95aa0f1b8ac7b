import { connect } from 'node:net';
import { PacketType } from '../../lib/protocol/index.js';
import { ENDING_KINDS, GENTLE_KINDS, makeInput, Random, type InputKind } from './support/fuzz-inputs.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';
import { mib, MiB, startServerProcess, type ServerProcess } from './support/server-process.js';

// `npm test` runs a bounded run (at least 100,000 inputs, well under a minute); `npm run fuzz` a
// longer one (FUZZ_INPUTS, default 2,000,000 there). FUZZ_SEED replays a run.
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 120_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_101);
const CONNECTIONS_AT_ONCE = 64;
/** The bound the server's resident memory must stay under, whatever it was sent. */
const RSS_BOUND = 384 * MiB;

/** Opens a connection, writes its inputs, half-closes (or drops it mid-way), and waits until it is closed. */
function runConnection(port: number, inputs: Buffer[], dropAfterMs: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = () => {
      clearTimeout(guard);
      resolve();
    };
    // Nothing may hang: a connection is given up after 2 s whatever happens.
    const guard = setTimeout(() => socket.destroy(), 2000);
    socket.on('error', () => undefined);
    socket.on('close', done);
    socket.on('data', () => undefined);
    socket.once('connect', () => {
      socket.write(Buffer.concat(inputs));
      if (dropAfterMs === undefined) socket.end();
      else setTimeout(() => socket.destroy(), dropAfterMs);
    });
  });
}

describe('fuzzing the job server (a child process running the CLI with its defaults)', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess(['--log-file', 'none']);
  });
  afterAll(() => server?.stop());

  test(`${INPUTS} seeded inputs over many connections: it stays up, answers a fresh client, and its memory stays under ${mib(RSS_BOUND)}`, async () => {
    const random = new Random(SEED);
    const counts = new Map<string, number>();
    const started = Date.now();
    const rssBefore = server.rss();
    let rssMax = rssBefore;
    const sampler = setInterval(() => {
      if (server.alive()) rssMax = Math.max(rssMax, server.rss());
    }, 100);
    let sent = 0;
    let connections = 0;
    const next = async (): Promise<void> => {
      while (sent < INPUTS && server.alive()) {
        // Inputs the server keeps reading after come first, then (usually) one that ends the connection.
        const count = 1 + random.below(random.below(4) === 0 ? 200 : 12);
        const kinds: InputKind[] = Array.from({ length: count }, () => random.pick(GENTLE_KINDS));
        if (random.below(5) !== 0) kinds.push(random.pick(ENDING_KINDS));
        const inputs: Buffer[] = [];
        for (const kind of kinds) {
          if (sent === INPUTS) break;
          counts.set(kind, (counts.get(kind) ?? 0) + 1);
          inputs.push(makeInput(random, kind));
          sent++;
        }
        connections++;
        await runConnection(server.port, inputs, random.below(8) === 0 ? random.below(40) : undefined);
      }
    };
    try {
      await Promise.all(Array.from({ length: CONNECTIONS_AT_ONCE }, next));
    } finally {
      clearInterval(sampler);
    }
    expect(server.alive()).toBe(true);
    rssMax = Math.max(rssMax, server.rss());
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `fuzz: seed ${SEED}, ${sent} inputs over ${connections} connections in ${seconds.toFixed(1)} s; ` +
        `server RSS ${mib(rssBefore)} before, at most ${mib(rssMax)}, ${mib(server.rss())} after; ` +
        `inputs by kind: ${[...counts].map(([kind, n]) => `${kind} ${n}`).join(', ')}`,
    );
    expect(sent).toBe(INPUTS);
    expect(rssMax).toBeLessThan(RSS_BOUND);
    const fresh = await RawPeer.connect(server.port);
    try {
      fresh.send(PacketType.ECHO_REQ, 'still here');
      expect(await fresh.expect(PacketType.ECHO_RES)).toEqual(['still here']);
      fresh.send(PacketType.SUBMIT_JOB_BG, 'after-fuzz', '', 'x');
      expect((await fresh.expect(PacketType.JOB_CREATED))[0]).toMatch(/^H:/);
    } finally {
      await fresh.close();
    }
    expect(await adminQuery(server.port, 'status', true)).toMatch(/^after-fuzz\t1\t0\t0$/m);
  }, 600_000);
});
