// Our job server against Debian's gearmand, same load generator, same run.
//   npm run build && node bench/job-server.bench.mjs
// Each server runs as its own process (ours through the CLI) so memory is read from
// /proc/PID/status alike. Throughput: foreground round trips (8 clients x 4 workers, 100-byte
// payload, one job in flight per client, then 16), background submit rate and drain rate over 200k jobs
// (100-byte payload, 36-byte unique), and resident memory per queued background job.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { backgroundDrain, backgroundSubmits, foregroundRoundTrips, sleep } from './support/load-generator.mjs';

const JOBS = Number(process.env.BENCH_JOBS ?? 200_000);
const FOREGROUND_MS = Number(process.env.BENCH_FOREGROUND_MS ?? 4000);
const GEARMAND = ['/usr/sbin/gearmand', '/usr/local/sbin/gearmand'].find((path) => existsSync(path));
const CLI = fileURLToPath(new URL('../dist/cjs/cli/main.js', import.meta.url));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => (socket.destroy(), resolve(false)));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error(`nothing listens on ${port}`);
}

function rssBytes(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match[1]) * 1024;
}

async function startGearmand() {
  const port = await freePort();
  const child = spawn(GEARMAND, ['--listen', '127.0.0.1', '--port', String(port), '--log-file', 'none'], { stdio: 'ignore' });
  await waitForPort(port);
  return { name: 'gearmand 1.1.20', port, child };
}

async function startOurs(nodeFlags = []) {
  const child = spawn(process.execPath, [...nodeFlags, CLI, 'server', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on [^:]+:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`our server exited with ${code}`)));
  });
  return { name: ['nestjs-gearman', ...nodeFlags].join(' '), port, child };
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

/** Only the memory figure: RSS delta per queued job. */
async function measureMemory(server) {
  await foregroundRoundTrips(server.port, { durationMs: 1000 });
  await sleep(500);
  const before = rssBytes(server.child.pid);
  await backgroundSubmits(server.port, { jobs: JOBS });
  await sleep(1000);
  return (rssBytes(server.child.pid) - before) / JOBS;
}

async function stop(server) {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

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
  // V8's young generation grows by tens of MB under a submit burst, whatever the queue holds; with
  // it capped the delta shows what the queued jobs themselves take.
  const capped = await startOurs(['--max-semi-space-size=1']);
  let cappedBytesPerJob;
  try {
    cappedBytesPerJob = await measureMemory(capped);
  } finally {
    await stop(capped);
  }

  const rows = [
    ['foreground round trips, 1 in flight per client (jobs/s)', 'foreground', 0],
    ['foreground, 16 in flight per client (jobs/s)', 'pipelined', 0],
    ['background submit (jobs/s)', 'submit', 0],
    ['background drain (jobs/s)', 'drain', 0],
    [`memory per queued job (bytes, ${JOBS} jobs)`, 'bytesPerJob', 0],
  ];
  console.log(`\njob server benchmark: 8 clients x 4 workers, 100-byte payload, ${JOBS} background jobs with 36-byte uniques`);
  const header = ['', ...results.map(([name]) => name), results.length === 2 ? 'ours/gearmand' : ''];
  const table = rows.map(([label, key]) => {
    const values = results.map(([, r]) => r[key]);
    return [label, ...values.map((v) => Math.round(v).toLocaleString('en-US')), values.length === 2 ? `${(values[1] / values[0]).toFixed(2)}x` : ''];
  });
  const widths = header.map((_, i) => Math.max(...[header, ...table].map((row) => String(row[i]).length)));
  for (const row of [header, ...table]) console.log(row.map((cell, i) => String(cell).padEnd(widths[i])).join('  '));
  console.log(`memory per queued job, ours under node --max-semi-space-size=1: ${Math.round(cappedBytesPerJob)} bytes`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
