// Nest round trips: ClientProxy.send('echo', 100-byte payload) -> handler -> reply, at concurrency
// 1 and 64, over ClientGearman/ServerGearman and over Nest's own TCP and Redis transports, side by
// side in one run, every transport with its defaults (no tuning), in two layouts:
//
// - separate processes: the client app, the broker (our job server through its CLI, gearmand,
//   redis-server; none for Nest TCP) and the microservice each in a process of its own;
// - one process: the quick start's layout, the embedded job server (GearmanModule.forRoot({
//   embeddedServer })), the microservice and the client in one process, against Nest TCP with its
//   client and its microservice in one process.
//
//   npm run build && node bench/nest.bench.mjs
// BENCH_NEST_MS sets the measuring time per cell and concurrency (default 3000, split over 3
// rounds); BENCH_NEST_ONLY=<text>[,<text>] keeps the cells whose name contains one of them.
//
// The cells take turns, round after round, so that a change of load on the machine weighs on all of
// them alike; each round starts every process afresh.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, Transport } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GearmanModule, ServerGearman } from '../dist/esm/index.js';
import { freePort, GEARMAND, REDIS_SERVER, startGearmand, startListeningProcess, startRedis } from './support/brokers.mjs';
import { EchoController, EchoModule } from './support/echo-module.mjs';

const MEASURE_MS = Number(process.env.BENCH_NEST_MS ?? 3000);
const ROUNDS = 3;
const ONLY = process.env.BENCH_NEST_ONLY;
const WARMUP_MS = 500;
const CONCURRENCIES = [1, 64];
const PAYLOAD = 'x'.repeat(98); // 100 bytes as JSON text
const SCRIPT = fileURLToPath(import.meta.url);
const CLI = join(process.cwd(), 'dist/cjs/cli/main.js');

/** How each transport's microservice and client are made, from the broker's address. */
const transports = {
  gearman: {
    server: ({ port }) => ({ strategy: new ServerGearman({ servers: [`127.0.0.1:${port}`] }) }),
    client: ({ port }) => ClientProxyFactory.create({ customClass: ClientGearman, options: { servers: [`127.0.0.1:${port}`] } }),
  },
  tcp: {
    server: ({ port }) => ({ transport: Transport.TCP, options: { host: '127.0.0.1', port } }),
    client: ({ port }) => ClientProxyFactory.create({ transport: Transport.TCP, options: { host: '127.0.0.1', port } }),
  },
  redis: {
    server: ({ port }) => ({ transport: Transport.REDIS, options: { host: '127.0.0.1', port } }),
    client: ({ port }) => ClientProxyFactory.create({ transport: Transport.REDIS, options: { host: '127.0.0.1', port } }),
  },
};

/** The separate-process cells: a broker (or none), the microservice in its own process, the client in another. */
const separateCells = [
  {
    name: 'Gearman, our job server',
    transport: 'gearman',
    async broker() {
      const port = await freePort();
      const { stop } = await startListeningProcess(process.execPath, [CLI, 'server', '--port', String(port)], port);
      return { port, stop };
    },
  },
  { name: 'Gearman, gearmand 1.1.20', transport: 'gearman', available: () => GEARMAND !== undefined, broker: () => startGearmand() },
  { name: 'Nest TCP', transport: 'tcp', broker: async () => ({ port: await freePort(), stop: async () => undefined }) },
  { name: 'Nest Redis', transport: 'redis', available: () => REDIS_SERVER !== undefined, broker: () => startRedis() },
];

/** The one-process cells: everything in the measuring process. */
const oneProcessCells = [
  {
    name: 'Gearman, embedded (1 process)',
    async start() {
      // The quick start: the module runs the job server, the app serves its handlers and calls them.
      class AppModule {}
      Module({ imports: [GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } })], controllers: [EchoController] })(
        AppModule,
      );
      const app = await NestFactory.createMicroservice(AppModule, { ...GearmanModule.microservice(), logger: false });
      await app.listen();
      return { app, client: app.get(ClientGearman) };
    },
  },
  {
    name: 'Nest TCP (1 process)',
    async start() {
      const port = await freePort();
      const app = await NestFactory.createMicroservice(EchoModule, { ...transports.tcp.server({ port }), logger: false });
      await app.listen();
      return { app, client: transports.tcp.client({ port }) };
    },
  },
];

/** `concurrency` callers each sending one request after another for `ms`; the replies that arrived and their latencies. */
async function measure(client, concurrency, ms, latencies) {
  const stopAt = Date.now() + ms;
  let replies = 0;
  const caller = async () => {
    while (Date.now() < stopAt) {
      const start = process.hrtime.bigint();
      const reply = await lastValueFrom(client.send('echo', PAYLOAD));
      if (reply !== PAYLOAD) throw new Error(`wrong reply: ${String(reply).slice(0, 40)}`);
      latencies?.push(Number(process.hrtime.bigint() - start) / 1e6);
      replies++;
    }
  };
  const begin = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, caller));
  return { replies, seconds: Number(process.hrtime.bigint() - begin) / 1e9 };
}

/** Each concurrency measured for `ms` after a warm-up; 1001 evenly spaced latency quantiles stand for each distribution. */
async function measureAll(client, ms) {
  const cells = [];
  for (const concurrency of CONCURRENCIES) {
    await measure(client, concurrency, WARMUP_MS);
    const latencies = [];
    const { replies, seconds } = await measure(client, concurrency, ms, latencies);
    latencies.sort((a, b) => a - b);
    const quantiles = Array.from(
      { length: 1001 },
      (_, i) => latencies[Math.min(latencies.length - 1, Math.floor((i / 1000) * latencies.length))],
    );
    cells.push({ concurrency, replies, seconds, quantiles });
  }
  return cells;
}

function report(cells) {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(cells)}\n`, resolve));
}

/** In a child process: the microservice of one transport, until killed. */
async function serve(transport, port) {
  const app = await NestFactory.createMicroservice(EchoModule, { ...transports[transport].server({ port }), logger: false });
  await app.listen();
  process.stdout.write('ready\n');
}

/** In a child process: a client of one transport, measuring. */
async function measureClient(transport, port, ms) {
  const client = transports[transport].client({ port });
  await client.connect();
  try {
    await report(await measureAll(client, ms));
  } finally {
    await client.close();
  }
}

/** In a child process: a one-process cell. */
async function measureOneProcess(name, ms) {
  const { app, client } = await oneProcessCells.find((cell) => cell.name === name).start();
  try {
    await client.connect();
    await report(await measureAll(client, ms));
  } finally {
    await client.close();
    await app.close();
  }
}

function child(args, { untilReady = false } = {}) {
  const proc = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (chunk) => (out += chunk));
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const done = exited.then((code) => {
    if (code !== 0 && !proc.killedOnPurpose) throw new Error(`${args.join(' ')} failed (exit code ${code})`);
    return out;
  });
  done.catch(() => undefined);
  const ready = untilReady
    ? new Promise((resolve, reject) => {
        proc.stdout.on('data', () => out.includes('ready') && resolve());
        done.then(() => reject(new Error(`${args.join(' ')} exited before it was ready`)), reject);
      })
    : undefined;
  return {
    ready,
    done,
    async kill() {
      proc.killedOnPurpose = true;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function runSeparate(cell, ms) {
  const broker = await cell.broker();
  const server = child(['--serve', cell.transport, String(broker.port)], { untilReady: true });
  try {
    await server.ready;
    const out = await child(['--client', cell.transport, String(broker.port), String(ms)]).done;
    return JSON.parse(out.trim().split('\n').pop());
  } finally {
    await server.kill();
    await broker.stop();
  }
}

async function runOneProcess(cell, ms) {
  const out = await child(['--one-process', cell.name, String(ms)]).done;
  return JSON.parse(out.trim().split('\n').pop());
}

async function run() {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` first');
  const wanted = (cell) => {
    if (ONLY && !ONLY.split(',').some((part) => cell.name.includes(part))) return false;
    if (cell.available && !cell.available()) {
      console.log(`${cell.name}: not installed, skipped`);
      return false;
    }
    return true;
  };
  const cells = [
    ...separateCells.filter(wanted).map((cell) => ({ ...cell, run: (ms) => runSeparate(cell, ms) })),
    ...oneProcessCells.filter(wanted).map((cell) => ({ ...cell, run: (ms) => runOneProcess(cell, ms) })),
  ];
  const totals = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const cell of cells) {
      for (const measured of await cell.run(MEASURE_MS / ROUNDS)) {
        const key = `${cell.name}|${measured.concurrency}`;
        const total = totals.get(key) ?? { replies: 0, seconds: 0, weighted: [] };
        total.replies += measured.replies;
        total.seconds += measured.seconds;
        for (const latency of measured.quantiles) total.weighted.push([latency, measured.replies / measured.quantiles.length]);
        totals.set(key, total);
      }
    }
  }
  const results = [];
  for (const concurrency of CONCURRENCIES) {
    for (const cell of cells) {
      const { replies, seconds, weighted } = totals.get(`${cell.name}|${concurrency}`);
      weighted.sort((a, b) => a[0] - b[0]);
      const quantile = (q) => {
        let seen = 0;
        for (const [latency, weight] of weighted) if ((seen += weight) >= q * replies) return latency;
        return weighted[weighted.length - 1][0];
      };
      const figures = { name: cell.name, concurrency, rate: replies / seconds, p50: quantile(0.5), p99: quantile(0.99) };
      results.push(figures);
      console.log(
        `${cell.name.padEnd(30)} c=${String(concurrency).padEnd(3)} ${figures.rate.toFixed(0).padStart(7)} req/s` +
          `   p50 ${figures.p50.toFixed(3)} ms   p99 ${figures.p99.toFixed(3)} ms`,
      );
    }
  }
  printRatios(results);
}

function printRatios(results) {
  const of = (name, concurrency) => results.find((r) => r.name === name && r.concurrency === concurrency);
  const ratio = (a, b) => (a && b ? `${(a.rate / b.rate).toFixed(2)}x ${b.name}` : undefined);
  console.log('\nThroughput ratios, every transport with its defaults:');
  for (const concurrency of CONCURRENCIES) {
    for (const gearman of ['Gearman, our job server', 'Gearman, gearmand 1.1.20']) {
      const parts = ['Nest TCP', 'Nest Redis'].map((name) => ratio(of(gearman, concurrency), of(name, concurrency))).filter(Boolean);
      if (parts.length > 0)
        console.log(`  separate processes c=${String(concurrency).padEnd(3)} ${gearman.padEnd(26)} ${parts.join('   ')}`);
    }
    const one = ratio(of('Gearman, embedded (1 process)', concurrency), of('Nest TCP (1 process)', concurrency));
    if (one) console.log(`  one process        c=${String(concurrency).padEnd(3)} ${'Gearman, embedded'.padEnd(26)} ${one}`);
  }
}

const started = Date.now();
const [mode, ...args] = process.argv.slice(2);
const main =
  mode === '--serve'
    ? serve(args[0], Number(args[1]))
    : mode === '--client'
      ? measureClient(args[0], Number(args[1]), Number(args[2]))
      : mode === '--one-process'
        ? measureOneProcess(args[0], Number(args[1]))
        : run();
main.then(
  () => {
    if (mode === '--serve') return; // serves until killed
    if (!mode) console.log(`\nnest.bench.mjs done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
