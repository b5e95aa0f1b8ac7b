// What the job server's protections cost, and what they buy.
//   npm run build && node bench/limits.bench.mjs
// 1. Round trips with the defaults (every limit on, unguessable handles) beside the same server with
//    `--no-limits --job-handles sequential` (gearmand's behaviour): both running at once, taking
//    turns for BENCH_LIMITS_ROUNDS rounds (default 5), the Node load generator (8 clients x 4
//    workers, 100-byte payload, 1 and 16 jobs in flight per client, background submit and drain of
//    BENCH_LIMITS_JOBS jobs) and, when it builds, gearbench's `rt 8 2000 100 4`; medians and ratios.
// 2. TLS beside plaintext: one server with a TLS listener and a plaintext one (certificates made by
//    openssl into a temporary directory), the same load over each in turns.
// 3. Fair service: four clients' ECHO round trips alone, then while one connection (another
//    process) writes ECHO_REQ or SUBMIT_JOB_BG as fast as its socket takes them; limits on and off.
// 4. Memory: the server's RSS while a peer offers 1 GiB of ECHO_REQ and reads nothing, and after it
//    left; limits on and off.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeRequest, PacketDecoder, PacketType } from '../dist/esm/protocol/index.js';
import { buildGearbench, runGearbench } from './support/gearbench.mjs';
import { backgroundDrain, backgroundSubmits, foregroundRoundTrips, sleep } from './support/load-generator.mjs';
import { connect } from 'node:net';

const ROUNDS = Number(process.env.BENCH_LIMITS_ROUNDS ?? 5);
const JOBS = Number(process.env.BENCH_LIMITS_JOBS ?? 100_000);
const FOREGROUND_MS = Number(process.env.BENCH_FOREGROUND_MS ?? 3000);
const CLI = process.env.BENCH_OURS_CLI ?? fileURLToPath(new URL('../dist/cjs/cli/main.js', import.meta.url));
const FLOOD_PEER = fileURLToPath(new URL('./support/flood-peer.mjs', import.meta.url));
const NO_LIMITS = ['--no-limits', '--job-handles', 'sequential'];
const MiB = 1024 * 1024;

function rss(pid) {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
}

/** Our server through the CLI with these flags; resolves with its ports (one per listener) once it listens. */
async function startOurs(flags, name) {
  const child = spawn(process.execPath, [CLI, 'server', '-p', '0', '--log-file', 'none', ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  const ports = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const expected = flags.includes('--plaintext-listen') ? 2 : 1;
      const found = [...text.matchAll(/listening on [^\n]*:(\d+)/g)].map((match) => Number(match[1]));
      if (found.length >= expected) resolve(found);
    });
  });
  return {
    name,
    port: ports[0],
    ports,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** CPU time the process has used, in µs (utime + stime from /proc/PID/stat, in clock ticks of 10 ms). */
function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const fmt = (value) => Math.round(value).toLocaleString('en-US');

function printTable(title, header, rows) {
  console.log(`\n${title}`);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => String(row[i]).length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, i) => String(cell).padEnd(widths[i])).join('  '));
}

/** Runs `measure(server)` on each server in turns (the first alternating by round); medians per key. */
async function inTurns(servers, measure) {
  const rounds = servers.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? servers.map((_, i) => i) : servers.map((_, i) => servers.length - 1 - i);
    for (const i of order) rounds[i].push(await measure(servers[i]));
  }
  const keys = Object.keys(rounds[0][0]);
  return { rounds, medians: rounds.map((list) => Object.fromEntries(keys.map((key) => [key, median(list.map((r) => r[key]))]))) };
}

/**
 * The load generator's figures on one server, with the server's CPU time per job beside each (far
 * steadier than throughput on a machine others use; the 500 ms warm-up of a round-trip phase is
 * counted at the measured rate).
 */
async function loadFigures(port, pid, tls) {
  const timed = async (run, jobsOf) => {
    const before = cpuMicros(pid);
    const value = await run();
    return [value, (cpuMicros(pid) - before) / jobsOf(value)];
  };
  const seconds = (FOREGROUND_MS + 500) / 1000;
  const [single, singleCpu] = await timed(
    () => foregroundRoundTrips(port, { durationMs: FOREGROUND_MS, tls }),
    (rate) => rate * seconds,
  );
  const [pipelined, pipelinedCpu] = await timed(
    () => foregroundRoundTrips(port, { durationMs: FOREGROUND_MS, window: 16, tls }),
    (rate) => rate * seconds,
  );
  const [{ rate: submit, fn }, submitCpu] = await timed(
    () => backgroundSubmits(port, { jobs: JOBS, tls }),
    () => JOBS,
  );
  const [drain, drainCpu] = await timed(
    () => backgroundDrain(port, fn, JOBS, { tls }),
    () => JOBS,
  );
  return { single, singleCpu, pipelined, pipelinedCpu, submit, submitCpu, drain, drainCpu };
}

/** Rows of throughput and of the server's CPU per job. */
const LOAD_ROWS = [
  ['foreground round trips, 1 in flight per client (jobs/s)', 'single'],
  ['  server CPU per round trip (µs)', 'singleCpu'],
  ['foreground, 16 in flight per client (jobs/s)', 'pipelined'],
  ['  server CPU per round trip (µs)', 'pipelinedCpu'],
  [`background submit, ${JOBS} jobs (jobs/s)`, 'submit'],
  ['  server CPU per job (µs)', 'submitCpu'],
  ['background drain (jobs/s)', 'drain'],
  ['  server CPU per job (µs)', 'drainCpu'],
];
const figure = (key, value) => (key.endsWith('Cpu') ? value.toFixed(1) : fmt(value));

async function costOfLimits() {
  const servers = [await startOurs([], 'limits on (defaults)'), await startOurs(NO_LIMITS, 'limits off, sequential handles')];
  const built = buildGearbench();
  try {
    const { rounds, medians } = await inTurns(servers, async (server) => ({
      ...(await loadFigures(server.port, server.child.pid)),
      ...(built.skip ? {} : { gearbench: runGearbench(built.path, server.port, 'rt', [8, 2000, 100, 4]).roundTrips }),
    }));
    const rows = [
      ...LOAD_ROWS,
      ...(built.skip ? [] : [['gearbench rt 8 2000 100 4: foreground round trips, libgearman C (jobs/s)', 'gearbench']]),
    ];
    printTable(
      `1. what the limits cost: medians of ${ROUNDS} rounds, the servers taking turns`,
      ['', servers[0].name, servers[1].name, 'on/off'],
      rows.map(([label, key]) => [
        label,
        figure(key, medians[0][key]),
        figure(key, medians[1][key]),
        `${(medians[0][key] / medians[1][key]).toFixed(3)}x`,
      ]),
    );
    for (const [i, server] of servers.entries()) {
      console.log(
        `rounds, ${server.name}: ${rows.map(([, key]) => `${key} ${rounds[i].map((r) => figure(key, r[key])).join('/')}`).join('; ')}`,
      );
    }
    if (built.skip) console.log(`gearbench skipped: ${built.skip}`);
  } finally {
    built.dispose?.();
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/** A CA and a server certificate for 127.0.0.1, made by openssl; undefined (with the reason printed) without it. */
function makeCertificates() {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    console.log('\n2. TLS skipped: openssl is not installed');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-gearman-bench-'));
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  run(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=bench CA', '-days', '2', '-out', 'ca.pem']);
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key']);
  run(['req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr']);
  execFileSync('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1\\n" > server.ext'], { cwd: dir });
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'server.ext',
    '-out',
    'server.pem',
  ]);
  return { dir, ca: readFileSync(join(dir, 'ca.pem')), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function tlsBesidePlaintext() {
  const pki = makeCertificates();
  if (!pki) return;
  const server = await startOurs(
    [
      '--ssl',
      '--ssl-certificate',
      join(pki.dir, 'server.pem'),
      '--ssl-key',
      join(pki.dir, 'server.key'),
      '--plaintext-listen',
      '127.0.0.1:0',
    ],
    'TLS and plaintext listeners',
  );
  try {
    const [tlsPort, plainPort] = server.ports;
    const routes = [
      { name: 'plaintext', port: plainPort, tls: undefined },
      { name: 'TLS 1.3', port: tlsPort, tls: { ca: pki.ca } },
    ];
    const { medians } = await inTurns(routes, (route) => loadFigures(route.port, server.child.pid, route.tls));
    printTable(
      `2. TLS beside plaintext, one server, one listener each: medians of ${ROUNDS} rounds, taking turns`,
      ['', 'plaintext', 'TLS', 'TLS/plaintext'],
      LOAD_ROWS.map(([label, key]) => [
        label,
        figure(key, medians[0][key]),
        figure(key, medians[1][key]),
        `${(medians[1][key] / medians[0][key]).toFixed(2)}x`,
      ]),
    );
  } finally {
    await server.stop();
    pki.remove();
  }
}

/** Four clients doing ECHO round trips, one in flight each, for `ms`: round trips per second. */
async function bystanders(port, ms) {
  const clients = await Promise.all(
    Array.from(
      { length: 4 },
      () =>
        new Promise((resolve) => {
          const socket = connect(port, '127.0.0.1');
          socket.setNoDelay(true);
          socket.once('connect', () => resolve(socket));
        }),
    ),
  );
  let done = 0;
  const end = Date.now() + ms;
  const request = encodeRequest(PacketType.ECHO_REQ, 'ping');
  await Promise.all(
    clients.map(
      (socket) =>
        new Promise((resolve) => {
          const decoder = new PacketDecoder({ accept: 'response' });
          socket.on('data', (chunk) =>
            decoder.feed(chunk, () => {
              done++;
              if (Date.now() < end) socket.write(request);
              else resolve();
            }),
          );
          socket.write(request);
        }),
    ),
  );
  for (const socket of clients) socket.destroy();
  return done / (ms / 1000);
}

function flood(port, mode, count = 0) {
  const child = spawn(process.execPath, [FLOOD_PEER, String(port), mode, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let last = { written: 0 };
  child.stdout.on('data', (chunk) => {
    const lines = String(chunk).trim().split('\n');
    last = JSON.parse(lines[lines.length - 1]);
  });
  return {
    stats: () => last,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function fairService() {
  const rows = [];
  for (const [label, flags] of [
    ['limits on (defaults)', []],
    ['limits off', NO_LIMITS],
  ]) {
    for (const mode of ['echo-blast', 'submit-bg-blast']) {
      const server = await startOurs(flags, label);
      try {
        const alone = await bystanders(server.port, 2000);
        const attacker = flood(server.port, mode);
        await sleep(500);
        const during = await bystanders(server.port, 2000);
        await attacker.stop();
        rows.push([`${label}, ${mode}`, fmt(alone), fmt(during), `${((during / alone) * 100).toFixed(1)} %`]);
      } finally {
        await server.stop();
      }
    }
  }
  printTable(
    '3. fair service: four clients doing ECHO round trips (1 in flight each), alone and while one connection (another process) floods',
    ['', 'alone (round trips/s)', 'during the flood', 'kept'],
    rows,
  );
}

async function memoryUnderUnreadReplies() {
  const rows = [];
  for (const [label, flags] of [
    ['limits on (defaults)', []],
    ['limits off', NO_LIMITS],
  ]) {
    const server = await startOurs(flags, label);
    try {
      const before = rss(server.child.pid);
      const attacker = flood(server.port, 'echo-unread', 1024 * MiB);
      let peak = before;
      let last = -1;
      for (;;) {
        await sleep(250);
        peak = Math.max(peak, rss(server.child.pid));
        const { written } = attacker.stats();
        if (written >= 1024 * MiB || (written > 0 && written === last)) break;
        last = written;
      }
      await sleep(500);
      peak = Math.max(peak, rss(server.child.pid));
      const offered = attacker.stats().written;
      await attacker.stop();
      await sleep(2000);
      const after = rss(server.child.pid);
      rows.push([
        label,
        `${(offered / MiB).toFixed(0)} MiB`,
        `${(before / MiB).toFixed(1)} MiB`,
        `${(peak / MiB).toFixed(1)} MiB`,
        `${(after / MiB).toFixed(1)} MiB`,
      ]);
    } finally {
      await server.stop();
    }
  }
  printTable(
    '4. memory: a peer offers 1 GiB of ECHO_REQ (1000-byte payloads) and reads no reply; the server RSS',
    ['', 'the server took', 'before', 'peak', '2 s after the peer left'],
    rows,
  );
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  // BENCH_LIMITS_ONLY=cost,tls,fair,memory runs some of the four.
  const only = process.env.BENCH_LIMITS_ONLY?.split(',');
  const wanted = (name) => !only || only.includes(name);
  if (wanted('cost')) await costOfLimits();
  if (wanted('tls')) await tlsBesidePlaintext();
  if (wanted('fair')) await fairService();
  if (wanted('memory')) await memoryUnderUnreadReplies();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
