// What observing costs: Nest round trips (ClientProxy.send('echo', 100-byte payload) -> handler ->
// reply, concurrency 1 and 64) over ClientGearman/ServerGearman on our job server, side by side in
// one run: without metrics, and with every metric on (the client's and the worker's, and the job
// server's: its process started with --http-port, which counts its jobs through its lifecycle and
// its bytes; every variant has a job server process of its own); both with the transport's defaults (@opentelemetry/api, a dev
// dependency here, is loaded; without an SDK registered its spans are no-ops), and once more with
// OpenTelemetry turned off.
//   npm run build && node bench/observability.bench.mjs
// BENCH_OBS_MS sets the measuring time per variant and concurrency (default 7000), BENCH_OBS_ROUNDS the
// rounds it is split over (default 7).
//
// Each measurement runs in a fresh process (client, microservice and, for metrics, a registry), the
// job server in a process of its own; the variants take turns, round after round. On a shared
// machine throughput swings with the load of others, so the ratios are medians of per-round ratios,
// and the app process's CPU time per round trip (user + system) is reported beside them: it is what
// the metrics add to, and it moves far less with the load of others than throughput does.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NestFactory } from '@nestjs/core';
import { Registry } from 'prom-client';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GearmanMetrics, ServerGearman } from '../dist/esm/index.js';
import { freePort, startListeningProcess } from './support/brokers.mjs';
import { EchoModule } from './support/echo-module.mjs';

const MEASURE_MS = Number(process.env.BENCH_OBS_MS ?? 7000);
const ROUNDS = Number(process.env.BENCH_OBS_ROUNDS ?? 7);
const WARMUP_MS = 500;
const CONCURRENCIES = [1, 64];
const PAYLOAD = 'x'.repeat(98); // 100 bytes as JSON text
const CLI = join(process.cwd(), 'dist/cjs/cli/main.js');

/**
 * The variants: the options of the client and the worker, and the flags of the job server process
 * each has to itself (one per variant, so that every server serves the same share of the load).
 */
const variants = [
  { name: 'defaults, no metrics', options: async () => ({}), serverFlags: [] },
  { name: 'defaults, metrics', options: async () => metricsOptions(), serverFlags: ['--http-port', '0'] },
  { name: 'no OpenTelemetry, no metrics', options: async () => ({ openTelemetry: false }), serverFlags: [] },
];

async function metricsOptions() {
  const metrics = await GearmanMetrics.create({ registry: new Registry() });
  return { client: { observer: metrics.client }, worker: { observer: metrics.worker }, metrics };
}

async function measure(client, concurrency, ms) {
  const stopAt = Date.now() + ms;
  let replies = 0;
  const caller = async () => {
    while (Date.now() < stopAt) {
      const reply = await lastValueFrom(client.send('echo', PAYLOAD));
      if (reply !== PAYLOAD) throw new Error(`wrong reply: ${String(reply).slice(0, 40)}`);
      replies++;
    }
  };
  const begin = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, caller));
  const used = process.cpuUsage(cpu);
  return { replies, seconds: Number(process.hrtime.bigint() - begin) / 1e9, cpuMicros: used.user + used.system };
}

async function runCell(name, port, ms) {
  const variant = variants.find((candidate) => candidate.name === name);
  const options = await variant.options();
  const servers = [`127.0.0.1:${port}`];
  const shared = options.openTelemetry === false ? { openTelemetry: false } : {};
  const strategy = new ServerGearman({ servers, concurrency: 64, ...shared, ...options.worker });
  const app = await NestFactory.createMicroservice(EchoModule, { strategy, logger: false });
  const client = new ClientGearman({ servers, ...shared, ...options.client });
  try {
    await app.listen();
    await client.connect();
    const cells = [];
    for (const concurrency of CONCURRENCIES) {
      const warmup = await measure(client, concurrency, WARMUP_MS);
      cells.push({ concurrency, ...(await measure(client, concurrency, ms)), warmupReplies: warmup.replies });
    }
    if (options.metrics) {
      // The metrics really counted: every reply of the warm-ups and the measurements.
      const text = await options.metrics.metrics();
      if (!/gearman_client_replies_total\{function="echo",mode="foreground"\} [1-9]/.test(text)) throw new Error('metrics counted nothing');
    }
    await new Promise((resolve) => process.stdout.write(`${JSON.stringify(cells)}\n`, resolve));
  } finally {
    await client.close();
    await app.close();
  }
}

/** CPU time (user + system) a process has used so far, in µs, from /proc (Linux). */
function processCpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function runCellProcess(name, port, ms) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--cell', name, String(port), String(ms)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`measuring ${name} failed (exit code ${code})`));
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

async function run() {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` first');
  const servers = new Map();
  for (const variant of variants) {
    const port = await freePort();
    servers.set(
      variant.name,
      await startListeningProcess(process.execPath, [CLI, 'server', '--port', String(port), ...variant.serverFlags], port),
    );
  }
  // rounds[i] maps `variant|concurrency` to that round's cell.
  const rounds = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const cells = new Map();
      for (const variant of variants) {
        const server = servers.get(variant.name);
        const before = processCpuMicros(server.child.pid);
        const measured = await runCellProcess(variant.name, server.port, MEASURE_MS / ROUNDS);
        // The job server's CPU over the whole cell, warm-ups included, shared out by every round trip of it.
        const roundTrips = measured.reduce((sum, cell) => sum + cell.replies + cell.warmupReplies, 0);
        const serverMicros = (processCpuMicros(server.child.pid) - before) / roundTrips;
        for (const cell of measured) cells.set(`${variant.name}|${cell.concurrency}`, { ...cell, serverMicros });
      }
      rounds.push(cells);
    }
  } finally {
    for (const server of servers.values()) await server.stop();
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const rate = (cell) => cell.replies / cell.seconds;
  const cpu = (cell) => cell.cpuMicros / cell.replies;
  for (const concurrency of CONCURRENCIES) {
    for (const variant of variants) {
      const cells = rounds.map((cells) => cells.get(`${variant.name}|${concurrency}`));
      const replies = cells.reduce((sum, cell) => sum + cell.replies, 0);
      const seconds = cells.reduce((sum, cell) => sum + cell.seconds, 0);
      console.log(
        `${variant.name.padEnd(30)} c=${String(concurrency).padEnd(3)} ${(replies / seconds).toFixed(0).padStart(7)} req/s` +
          `   app CPU ${median(cells.map(cpu)).toFixed(1).padStart(6)} µs/round trip (median)` +
          `   job server CPU ${median(cells.map((cell) => cell.serverMicros))
            .toFixed(1)
            .padStart(5)} µs/round trip (median, both concurrencies)`,
      );
    }
  }
  const ratio = (a, b, concurrency, of) =>
    median(rounds.map((cells) => of(cells.get(`${a}|${concurrency}`)) / of(cells.get(`${b}|${concurrency}`))));
  console.log('\nMedians of per-round ratios:');
  for (const concurrency of CONCURRENCIES) {
    const metrics = ratio('defaults, metrics', 'defaults, no metrics', concurrency, rate);
    const metricsCpu = ratio('defaults, metrics', 'defaults, no metrics', concurrency, cpu);
    const metricsServerCpu = ratio('defaults, metrics', 'defaults, no metrics', concurrency, (cell) => cell.serverMicros);
    const otel = ratio('defaults, no metrics', 'no OpenTelemetry, no metrics', concurrency, rate);
    const otelCpu = ratio('defaults, no metrics', 'no OpenTelemetry, no metrics', concurrency, cpu);
    console.log(
      `  c=${String(concurrency).padEnd(3)} metrics on / off: throughput ${metrics.toFixed(3)}, CPU per round trip ${metricsCpu.toFixed(3)} (app), ${metricsServerCpu.toFixed(3)} (job server)` +
        `   |  OpenTelemetry API without SDK / off: throughput ${otel.toFixed(3)}, CPU ${otelCpu.toFixed(3)}`,
    );
  }
}

const started = Date.now();
const [mode, cellName, cellPort, cellMs] = process.argv.slice(2);
const main = mode === '--cell' ? runCell(cellName, Number(cellPort), Number(cellMs)) : run();
main.then(
  () => {
    if (mode !== '--cell') console.log(`\nobservability.bench.mjs done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
