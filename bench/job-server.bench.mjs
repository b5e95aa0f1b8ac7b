// Our job server against Debian's gearmand, same load generator, same run.
//   npm run build && node bench/job-server.bench.mjs
// Each server runs as its own process (ours through the CLI) so memory is read from
// /proc/PID/status alike. Throughput: foreground round trips (8 clients x 4 workers, 100-byte
// payload, one job in flight per client, then 16), background submit rate and drain rate over 200k jobs
// (100-byte payload, 36-byte unique), and resident memory per queued background job. Our memory
// figure is read after a full garbage collection, asked for over the inspector protocol (the child
// runs with --inspect on loopback), so V8's young generation, which grows by tens of MB under a
// submit burst whatever the queue holds, is not counted as queued jobs.
// Then the same two servers, fresh, under libgearman's C clients and workers (gearbench, see
// bench/support/gearbench.mjs): foreground round trips `rt 8 2000 100 4` and background
// `bg 4 25000 100 4`, the servers taking turns for BENCH_GEARBENCH_ROUNDS rounds (default 3, 0 to
// skip), medians reported. BENCH_OURS_CLI points at another build's dist/cjs/cli/main.js, to
// compare two builds on the same machine.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { backgroundDrain, backgroundSubmits, foregroundRoundTrips, sleep } from './support/load-generator.mjs';
import { startGearmand } from './support/brokers.mjs';
import { buildGearbench, runGearbench } from './support/gearbench.mjs';

const JOBS = Number(process.env.BENCH_JOBS ?? 200_000);
const MEMORY_ROUNDS = Number(process.env.BENCH_MEMORY_ROUNDS ?? 3);
const FOREGROUND_MS = Number(process.env.BENCH_FOREGROUND_MS ?? 4000);
const GEARBENCH_ROUNDS = Number(process.env.BENCH_GEARBENCH_ROUNDS ?? 3);
const GEARBENCH_RT = [8, 2000, 100, 4];
const GEARBENCH_BG = [4, 25000, 100, 4];
const GEARMAND = ['/usr/sbin/gearmand', '/usr/local/sbin/gearmand'].find((path) => existsSync(path));
const CLI = process.env.BENCH_OURS_CLI ?? fileURLToPath(new URL('../dist/cjs/cli/main.js', import.meta.url));

function rssBytes(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match[1]) * 1024;
}

/** Our server through the CLI; with `inspect`, also the inspector's WebSocket URL (loopback, any port). */
async function startOurs({ inspect = false } = {}) {
  const flags = inspect ? ['--inspect=127.0.0.1:0'] : [];
  const child = spawn(process.execPath, [...flags, CLI, 'server', '--port', '0'], {
    stdio: ['ignore', 'pipe', inspect ? 'pipe' : 'inherit'],
  });
  const exited = new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`our server exited with ${code}`))));
  const port = Promise.race([exited, lineMatch(child.stdout, /listening on [^:]+:(\d+)/).then((match) => Number(match[1]))]);
  const inspector = inspect
    ? Promise.race([exited, lineMatch(child.stderr, /Debugger listening on (ws:\S+)/).then((match) => match[1])])
    : undefined;
  return { name: 'nestjs-gearman', port: await port, inspectorUrl: await inspector, child };
}

function lineMatch(stream, pattern) {
  return new Promise((resolve) => {
    let text = '';
    stream.on('data', (chunk) => {
      text += chunk;
      const match = pattern.exec(text);
      if (match) resolve(match);
    });
  });
}

/**
 * A Chrome DevTools protocol session with a node process started with --inspect, over the least
 * of WebSocket (text frames only): used to run a full garbage collection in the server process
 * and read its heap, without any admin command in the server for it.
 */
class InspectorSession {
  static async open(wsUrl) {
    const url = new URL(wsUrl);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((resolve, reject) => (socket.once('connect', resolve), socket.once('error', reject)));
    const session = new InspectorSession(socket);
    socket.write(
      `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await session.upgraded;
    return session;
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.nextId = 1;
    this.pending = new Map();
    this.upgraded = new Promise((resolve) => (this.onUpgrade = resolve));
    this.handshakeDone = false;
    socket.on('data', (chunk) => this.onData(chunk));
  }

  call(method, params = {}) {
    const id = this.nextId++;
    const payload = Buffer.from(JSON.stringify({ id, method, params }));
    const mask = randomBytes(4);
    const length =
      payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
    this.socket.write(Buffer.concat([Buffer.from([0x81]), length, mask, masked]));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  close() {
    this.socket.destroy();
  }

  onData(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (!this.handshakeDone) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.buffer = this.buffer.subarray(end + 4);
      this.handshakeDone = true;
      this.onUpgrade();
    }
    for (;;) {
      if (this.buffer.length < 2) return;
      let length = this.buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) [length, offset] = [this.buffer.readUInt16BE(2), 4];
      else if (length === 127) [length, offset] = [Number(this.buffer.readBigUInt64BE(2)), 10];
      if (this.buffer.length < offset + length) return;
      const message = JSON.parse(this.buffer.toString('utf8', offset, offset + length));
      this.buffer = this.buffer.subarray(offset + length);
      const waiter = this.pending.get(message.id);
      if (!waiter) continue;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`${message.error.message}`));
      else waiter.resolve(message.result);
    }
  }
}

async function measure(server) {
  const foreground = await foregroundRoundTrips(server.port, { durationMs: FOREGROUND_MS });
  const pipelined = await foregroundRoundTrips(server.port, { durationMs: FOREGROUND_MS, window: 16 });
  await sleep(500);
  const before = rssBytes(server.child.pid);
  const { rate: submit, fn } = await backgroundSubmits(server.port, { jobs: JOBS });
  await sleep(1000);
  const after = rssBytes(server.child.pid);
  const drain = await backgroundDrain(server.port, fn, JOBS);
  return { foreground, pipelined, submit, drain, bytesPerJob: (after - before) / JOBS };
}

/**
 * Our memory per queued job, in rounds: each reads RSS and the live heap after a full garbage
 * collection, queues JOBS background jobs, collects and reads again, then drains the queue.
 */
async function measureMemory(server) {
  const inspector = await InspectorSession.open(server.inspectorUrl);
  const settle = async () => {
    await inspector.call('HeapProfiler.collectGarbage');
    await sleep(200);
    const { usedSize } = await inspector.call('Runtime.getHeapUsage');
    return { rss: rssBytes(server.child.pid), heap: usedSize };
  };
  try {
    await foregroundRoundTrips(server.port, { durationMs: 1000 });
    const rounds = [];
    for (let round = 0; round < MEMORY_ROUNDS; round++) {
      const before = await settle();
      const { fn } = await backgroundSubmits(server.port, { jobs: JOBS });
      const after = await settle();
      rounds.push({ rss: (after.rss - before.rss) / JOBS, heap: (after.heap - before.heap) / JOBS });
      await backgroundDrain(server.port, fn, JOBS);
    }
    return rounds;
  } finally {
    inspector.close();
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function stop(server) {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

/**
 * gearbench against gearmand and ours, both running at once, taking turns (the first to go
 * alternates by round), so a change in the machine's load falls on both alike.
 */
async function measureWithGearbench() {
  if (GEARBENCH_ROUNDS <= 0) return { skip: 'BENCH_GEARBENCH_ROUNDS is 0' };
  if (!GEARMAND) return { skip: 'gearmand is not installed (apt-get install gearman-job-server)' };
  const built = buildGearbench();
  if (built.skip) return built;
  const servers = [await startGearmand(), await startOurs()];
  const rounds = servers.map(() => []);
  try {
    for (let round = 0; round < GEARBENCH_ROUNDS; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const figures = {
          ...runGearbench(built.path, servers[i].port, 'rt', GEARBENCH_RT),
          ...runGearbench(built.path, servers[i].port, 'bg', GEARBENCH_BG),
        };
        rounds[i].push(figures);
      }
    }
  } finally {
    await Promise.all(servers.map(stop));
    built.dispose();
  }
  const medians = rounds.map((list) =>
    Object.fromEntries(['roundTrips', 'submit', 'drain'].map((key) => [key, median(list.map((r) => r[key]))])),
  );
  return { names: servers.map((server) => server.name), rounds, medians };
}

function printTable(title, header, rows) {
  console.log(`\n${title}`);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => String(row[i]).length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, i) => String(cell).padEnd(widths[i])).join('  '));
}

const jobsPerSecond = (value) => Math.round(value).toLocaleString('en-US');

async function main() {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const results = [];
  if (GEARMAND) {
    const gearmand = await startGearmand();
    try {
      results.push([gearmand.name, await measure(gearmand)]);
    } finally {
      await stop(gearmand);
    }
  } else {
    console.log('gearmand is not installed (apt-get install gearman-job-server): measuring ours alone');
  }
  const ours = await startOurs();
  try {
    results.push([ours.name, await measure(ours)]);
  } finally {
    await stop(ours);
  }
  // Memory in a fresh process of its own, read after full garbage collections (see measureMemory).
  const inspected = await startOurs({ inspect: true });
  let memoryRounds;
  try {
    memoryRounds = await measureMemory(inspected);
  } finally {
    await stop(inspected);
  }
  const oursResult = results[results.length - 1][1];
  oursResult.rawBytesPerJob = oursResult.bytesPerJob;
  oursResult.bytesPerJob = median(memoryRounds.map((round) => round.rss));

  const rows = [
    ['foreground round trips, 1 in flight per client (jobs/s)', 'foreground', 0],
    ['foreground, 16 in flight per client (jobs/s)', 'pipelined', 0],
    ['background submit (jobs/s)', 'submit', 0],
    ['background drain (jobs/s)', 'drain', 0],
    [`memory per queued job (bytes of RSS, ${JOBS} jobs)`, 'bytesPerJob', 0],
  ];
  const header = ['', ...results.map(([name]) => name), results.length === 2 ? 'ours/gearmand' : ''];
  const table = rows.map(([label, key]) => {
    const values = results.map(([, r]) => r[key]);
    return [label, ...values.map(jobsPerSecond), values.length === 2 ? `${(values[1] / values[0]).toFixed(2)}x` : ''];
  });
  const gearbench = await measureWithGearbench();
  if (gearbench.skip) {
    console.log(`\ngearbench skipped: ${gearbench.skip}`);
  } else if (results.length === 2) {
    const [theirs, ours] = gearbench.medians;
    const row = (label, key) => [label, jobsPerSecond(theirs[key]), jobsPerSecond(ours[key]), `${(ours[key] / theirs[key]).toFixed(2)}x`];
    const medianOf = `gearbench (libgearman C clients and workers, median of ${GEARBENCH_ROUNDS})`;
    table.push(
      row(`${medianOf}: rt ${GEARBENCH_RT.join(' ')} foreground round trips (jobs/s)`, 'roundTrips'),
      row(`${medianOf}: bg ${GEARBENCH_BG.join(' ')} background submit (jobs/s)`, 'submit'),
      row(`${medianOf}: bg ${GEARBENCH_BG.join(' ')} background drain (jobs/s)`, 'drain'),
    );
  }
  printTable(
    `job server benchmark: Node load generator (8 clients x 4 workers, 100-byte payload, ${JOBS} background jobs with 36-byte uniques), then gearbench`,
    header,
    table,
  );
  if (!gearbench.skip) {
    for (const [i, name] of gearbench.names.entries()) {
      const list = (key) => gearbench.rounds[i].map((round) => jobsPerSecond(round[key])).join(', ');
      console.log(`gearbench rounds, ${name}: rt ${list('roundTrips')}; bg submit ${list('submit')}; bg drain ${list('drain')}`);
    }
  }
  const list = (key) => memoryRounds.map((round) => Math.round(round[key])).join(', ');
  console.log(
    `ours, memory per queued job after a full GC, ${MEMORY_ROUNDS} rounds: RSS ${list('rss')} bytes (median in the table); live heap ${list('heap')} bytes`,
  );
  console.log(`ours, RSS delta per queued job without a GC (young generation included): ${Math.round(oursResult.rawBytesPerJob)} bytes`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
