// The sqlite job queue against the memory queue and against gearmand 1.1.20's -q libsqlite3, on the
// same load, each server its own process:
//   npm run build && node bench/durable-queue.bench.mjs
// Throughput: BENCH_DURABLE_JOBS background submits (4 clients x 200 in flight, 100-byte payload,
// 36-byte unique), then the drain by 4 workers; and gearbench's `bg 4 2000 100 0` (libgearman C
// clients) where gcc and libgearman-dev are installed. Memory: the RSS of our server (sqlite queue,
// memory queue, and memory queue keeping no results) before and after BENCH_DURABLE_MEMORY_JOBS
// background jobs are queued and drained.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GEARMAND, freePort, startListeningProcess } from './support/brokers.mjs';
import { buildGearbench, runGearbench } from './support/gearbench.mjs';
import { backgroundDrain, backgroundSubmits, sleep } from './support/load-generator.mjs';

const JOBS = Number(process.env.BENCH_DURABLE_JOBS ?? 20_000);
const MEMORY_JOBS = Number(process.env.BENCH_DURABLE_MEMORY_JOBS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_DURABLE_ROUNDS ?? 3);
const CLI = fileURLToPath(new URL('../dist/cjs/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'nestjs-gearman-durable-bench-'));
let files = 0;

function rssBytes(pid) {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
}

/** Our server with its memory queue, and these flags. */
const ourMemoryQueue = (port, ...flags) =>
  startListeningProcess(process.execPath, [CLI, 'server', '--port', String(port), '--log-file', 'none', ...flags], port);

const servers = {
  'ours, memory queue': (port) => ourMemoryQueue(port),
  'ours, sqlite queue': (port) => startOurSqlite(port, 'normal'),
  'ours, sqlite, full sync': (port) => startOurSqlite(port, 'full'),
  'gearmand -q libsqlite3': (port) =>
    startListeningProcess(
      GEARMAND,
      [
        '--listen',
        '127.0.0.1',
        '--port',
        String(port),
        '--log-file',
        'none',
        '-q',
        'libsqlite3',
        `--libsqlite3-db=${join(dir, `gearmand-${++files}.db`)}`,
      ],
      port,
    ),
};

function startOurSqlite(port, synchronous) {
  const file = join(dir, `ours-${++files}.db`);
  const args = ['server', '--port', String(port), '--log-file', 'none', '-q', 'libsqlite3', '--libsqlite3-db', file];
  return startListeningProcess(process.execPath, [CLI, ...args, '--sqlite-synchronous', synchronous], port);
}

async function throughput(name) {
  const server = await servers[name](await freePort());
  try {
    const { rate: submit, fn } = await backgroundSubmits(server.port, { jobs: JOBS });
    const drain = await backgroundDrain(server.port, fn, JOBS);
    return { submit, drain };
  } finally {
    await server.stop();
  }
}

async function gearbench(path, name) {
  const server = await servers[name](await freePort());
  try {
    return runGearbench(path, server.port, 'bg', [4, 2000, 100, 0]);
  } finally {
    await server.stop();
  }
}

/**
 * RSS of a fresh server, after a warm-up load (JOBS jobs queued and drained: the JIT's code and V8's
 * young generation at their working size), with MEMORY_JOBS queued, and after they drained and the
 * process idled (up to 60 s, for V8's memory reducer, which hands unused heap back when idle).
 */
/** Only in the memory table: what the kept results (100,000 by default) add to what stays after a drain. */
const withoutResults = (port) => ourMemoryQueue(port, '--no-results');

async function memory(name, start = servers[name]) {
  const server = await start(await freePort());
  try {
    await sleep(500);
    const cold = rssBytes(server.child.pid);
    const warmUp = await backgroundSubmits(server.port, { jobs: JOBS });
    await backgroundDrain(server.port, warmUp.fn, JOBS);
    await sleep(2000);
    const before = rssBytes(server.child.pid);
    const { fn } = await backgroundSubmits(server.port, { jobs: MEMORY_JOBS });
    const peak = rssBytes(server.child.pid);
    await backgroundDrain(server.port, fn, MEMORY_JOBS);
    let after = rssBytes(server.child.pid);
    for (let second = 0; second < 60 && after > before * 1.2; second++) {
      await sleep(1000);
      after = rssBytes(server.child.pid);
    }
    const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
    console.log(
      `  ${name.padEnd(24)} fresh ${mb(cold)}, warmed up ${mb(before)}, queue full ${mb(peak)}, drained ${mb(after)} (${ratio(after, before)} of warmed up, ${ratio(after, cold)} of fresh)`,
    );
  } finally {
    await server.stop();
  }
}

const format = (rate) => `${Math.round(rate).toLocaleString('en-US')}/s`;
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

try {
  if (!GEARMAND || !existsSync(CLI)) throw new Error('needs gearmand (apt-get install gearman-job-server) and `npm run build`');
  console.log(
    `Background submit and drain, ${JOBS.toLocaleString('en-US')} jobs, 4 clients x 200 in flight, 4 workers; medians of ${ROUNDS} rounds taken in turns`,
  );
  const samples = Object.fromEntries(Object.keys(servers).map((name) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of Object.keys(servers)) samples[name].push(await throughput(name));
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const figures = {};
  for (const name of Object.keys(servers)) {
    figures[name] = { submit: median(samples[name].map((s) => s.submit)), drain: median(samples[name].map((s) => s.drain)) };
    console.log(
      `  ${name.padEnd(24)} submit ${format(figures[name].submit).padStart(10)}   drain ${format(figures[name].drain).padStart(10)}`,
    );
  }
  for (const name of ['ours, sqlite queue', 'ours, sqlite, full sync']) {
    const sqlite = figures[name];
    const gearmand = figures['gearmand -q libsqlite3'];
    const memory = figures['ours, memory queue'];
    console.log(
      `  ${name}: submit ${ratio(sqlite.submit, gearmand.submit)} gearmand's, ${ratio(sqlite.submit, memory.submit)} our memory queue's; drain ${ratio(sqlite.drain, gearmand.drain)} gearmand's, ${ratio(sqlite.drain, memory.drain)} our memory queue's`,
    );
  }

  const built = buildGearbench();
  if (built.skip) {
    console.log(`gearbench: skipped, ${built.skip}`);
  } else {
    try {
      console.log('gearbench bg 4 2000 100 0 (libgearman clients, submits only)');
      const theirs = await gearbench(built.path, 'gearmand -q libsqlite3');
      for (const name of ['ours, sqlite queue', 'ours, sqlite, full sync']) {
        const ours = await gearbench(built.path, name);
        console.log(`  ${name.padEnd(24)} submit ${format(ours.submit).padStart(10)}   (${ratio(ours.submit, theirs.submit)} gearmand's)`);
      }
      console.log(`  ${'gearmand -q libsqlite3'.padEnd(24)} submit ${format(theirs.submit).padStart(10)}`);
    } finally {
      built.dispose();
    }
  }

  console.log(`Memory: ${MEMORY_JOBS.toLocaleString('en-US')} background jobs queued, then drained (RSS of the server process)`);
  for (const name of ['ours, sqlite queue', 'ours, memory queue']) await memory(name);
  await memory('ours, memory, no results', withoutResults);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
