import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { PacketType } from '../../lib/protocol/index.js';
import { RawPeer } from './support/raw-peer.js';
import { mib, MiB, startServerProcess, type ServerProcess } from './support/server-process.js';

// Each limit exceeded against the CLI's server in a process of its own: the error the peer sees,
// the server's memory (asserted to stay bounded), and the round-trip rate of four well-behaved
// clients before and during (printed, never asserted: timings belong to benchmarks).
const FLOOD_PEER = join(process.cwd(), 'bench/support/flood-peer.mjs');
const P = PacketType;

interface FloodStats {
  written: number;
  replies: number;
  errors: number;
  open: number;
  closed: number;
  refused: number;
  lastError?: string;
}

/** The flood peer in its own process; `stats()` is what it last reported. */
function startFlood(port: number, mode: string, count = 0): { stats(): FloodStats; stop(): Promise<void> } {
  const child: ChildProcess = spawn(process.execPath, [FLOOD_PEER, String(port), mode, String(count)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let last: FloodStats = { written: 0, replies: 0, errors: 0, open: 0, closed: 0, refused: 0 };
  let buffered = '';
  child.stdout!.on('data', (chunk) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    if (lines.length > 0) last = JSON.parse(lines[lines.length - 1]) as FloodStats;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    stats: () => last,
    async stop() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** ECHO round trips per second of four clients, one in flight each, for `ms`. */
async function bystanderRate(peers: RawPeer[], ms = 1000): Promise<number> {
  let done = 0;
  const end = Date.now() + ms;
  await Promise.all(
    peers.map(async (peer) => {
      while (Date.now() < end) {
        peer.send(P.ECHO_REQ, 'ping');
        await peer.expect(P.ECHO_RES, 10_000);
        done++;
      }
    }),
  );
  return done / (ms / 1000);
}

const figures: string[] = [];

describe('the job server under a hostile peer (CLI server process, figures printed)', () => {
  let server: ServerProcess | undefined;
  const stops: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
    await server?.stop();
    server = undefined;
  });
  afterAll(() => console.log(`job server under load:\n${figures.join('\n')}`));

  async function serve(flags: string[]): Promise<{ port: number; bystanders: RawPeer[]; baseline: number; rss0: number }> {
    server = await startServerProcess(['--log-file', 'none', ...flags]);
    const bystanders = await Promise.all(Array.from({ length: 4 }, () => RawPeer.connect(server!.port)));
    stops.push(() => Promise.all(bystanders.map((peer) => peer.close())));
    const baseline = await bystanderRate(bystanders);
    return { port: server.port, bystanders, baseline, rss0: server.rss() };
  }

  function record(what: string, baseline: number, during: number, rss0: number, rssPeak: number, rssAfter: number, seen: string): void {
    figures.push(
      `- ${what}: others ${Math.round(baseline)} -> ${Math.round(during)} round trips/s (${((during / baseline) * 100).toFixed(0)} %); ` +
        `server RSS ${mib(rss0)} -> peak ${mib(rssPeak)} -> ${mib(rssAfter)} after; the peer saw: ${seen}`,
    );
  }

  test('replies never read (1 GiB of ECHO_REQ offered): the server stops reading the peer; its memory stays flat', async () => {
    const { port, bystanders, baseline, rss0 } = await serve([]);
    const flood = startFlood(port, 'echo-unread', 1024 * MiB);
    stops.push(() => flood.stop());
    let peak = rss0;
    let last = -1;
    // Written bytes stop growing once the server reads no more and the kernel buffers are full.
    await until(() => {
      peak = Math.max(peak, server!.rss());
      const { written } = flood.stats();
      const settled = written > 0 && written === last;
      last = written;
      return settled;
    }, 'the flood to back up');
    const during = await bystanderRate(bystanders);
    peak = Math.max(peak, server!.rss());
    const written = flood.stats().written;
    await flood.stop();
    await sleep(500);
    const after = server!.rss();
    record('replies never read (1 GiB offered)', baseline, during, rss0, peak, after, `its writes backed up after ${mib(written)}`);
    expect(written).toBeLessThan(64 * MiB);
    expect(peak - rss0).toBeLessThan(64 * MiB);
  });

  test('one connection flooding ECHO_REQ (written as fast as the socket takes them, replies read): the others keep being served', async () => {
    const { port, bystanders, baseline, rss0 } = await serve([]);
    const flood = startFlood(port, 'echo-blast');
    stops.push(() => flood.stop());
    await until(() => flood.stats().replies > 0, 'the flood to start');
    const during = await bystanderRate(bystanders, 2000);
    const peak = server!.rss();
    const replies = flood.stats().replies;
    await flood.stop();
    record('one connection flooding ECHO_REQ', baseline, during, rss0, peak, server!.rss(), `${replies} replies`);
    expect(during).toBeGreaterThan(0);
    expect(replies).toBeGreaterThan(0);
  });

  test('one connection flooding SUBMIT_JOB_BG past --max-queued-per-function 100000: QUEUE_ERROR, memory bounded by the limit', async () => {
    const { port, bystanders, baseline, rss0 } = await serve(['--max-queued-per-function', '100000']);
    const flood = startFlood(port, 'submit-bg-blast');
    stops.push(() => flood.stop());
    const during = await bystanderRate(bystanders, 2000);
    await until(() => flood.stats().errors > 0, 'a refused submit');
    await sleep(500);
    const peak = server!.rss();
    const { replies, errors, lastError } = flood.stats();
    await flood.stop();
    record(
      'one connection flooding SUBMIT_JOB_BG',
      baseline,
      during,
      rss0,
      peak,
      server!.rss(),
      `${replies} queued, then ${errors} x ${lastError}`,
    );
    expect(lastError).toBe('QUEUE_ERROR Job queue is full');
    expect(replies).toBe(100_000);
    // 100,000 queued jobs of 100 bytes.
    expect(peak - rss0).toBeLessThan(160 * MiB);
  });

  test('more connections than --max-connections 300: the rest get TOO_MANY_CONNECTIONS', async () => {
    const { port, bystanders, baseline, rss0 } = await serve(['--max-connections', '300']);
    const flood = startFlood(port, 'connections', 400);
    stops.push(() => flood.stop());
    await until(() => flood.stats().open + flood.stats().closed >= 400 && flood.stats().refused >= 100, 'the refusals');
    const during = await bystanderRate(bystanders);
    const { refused, lastError } = flood.stats();
    record('400 connections at --max-connections 300', baseline, during, rss0, server!.rss(), server!.rss(), `${refused} x ${lastError}`);
    // 4 bystanders and 296 of the flood's connections got in.
    expect(refused).toBe(104);
    expect(lastError).toBe('TOO_MANY_CONNECTIONS The job server has 300 connections open, its limit (maxConnections)');
  });

  test('slowloris (300 connections, half a header each) at --packet-timeout 1: every one is closed', async () => {
    const { port, bystanders, baseline, rss0 } = await serve(['--packet-timeout', '1']);
    const flood = startFlood(port, 'slowloris', 300);
    stops.push(() => flood.stop());
    await until(() => flood.stats().open === 300, 'the connections');
    const during = await bystanderRate(bystanders);
    await until(() => flood.stats().closed === 300, 'every slow connection to be closed');
    const { lastError } = flood.stats();
    record('300 slowloris connections at --packet-timeout 1', baseline, during, rss0, server!.rss(), server!.rss(), `closed, ${lastError}`);
    expect(lastError).toBe('PACKET_TIMEOUT A packet started arriving and was not whole within 1000 ms');
  });

  test('300 silent connections at --idle-timeout 1: every one is closed, the busy bystanders are not', async () => {
    const { port, bystanders, baseline, rss0 } = await serve(['--idle-timeout', '1']);
    const flood = startFlood(port, 'connections', 300);
    stops.push(() => flood.stop());
    const allClosed = until(() => flood.stats().closed === 300, 'every idle connection to be closed');
    let closed = false;
    allClosed.then(
      () => (closed = true),
      () => (closed = true),
    );
    // The bystanders make round trips the whole time, so they are never idle while the others are closed.
    let during: number;
    do during = await bystanderRate(bystanders, 500);
    while (!closed);
    await allClosed;
    record('300 idle connections at --idle-timeout 1', baseline, during, rss0, server!.rss(), server!.rss(), 'closed');
    expect(during).toBeGreaterThan(0);
  });
});
