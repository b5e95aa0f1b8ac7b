// Nest round trips: ClientProxy.send('echo', 100-byte payload) -> handler -> reply, at concurrency
// 1 and 64, over ClientGearman/ServerGearman on our job server and on gearmand, and over Nest's own
// TCP and Redis transports, side by side in one run.
//   npm run build && node bench/nest.bench.mjs
// BENCH_NEST_MS sets the measuring time per transport and concurrency (default 3000, split over
// 3 rounds); BENCH_NEST_ONLY=<text>[,<text>] keeps the transports whose name contains one of them.
//
// Each measurement runs in a fresh process holding one Nest client and its microservice, as a
// service using one transport would (in one shared process the transports' code paths would slow
// each other's JIT); the brokers (our job server through its CLI, gearmand, redis-server) run as
// processes of their own. The transports take turns, round after round, so that a change of load
// on the machine weighs on all of them alike.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, MessagePattern, Transport } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, ServerGearman } from '../dist/esm/index.js';
import { freePort, GEARMAND, REDIS_SERVER, startGearmand, startListeningProcess, startRedis } from './support/brokers.mjs';

const MEASURE_MS = Number(process.env.BENCH_NEST_MS ?? 3000);
const ROUNDS = 3;
const ONLY = process.env.BENCH_NEST_ONLY;
const WARMUP_MS = 500;
const CONCURRENCIES = [1, 64];
const PAYLOAD = 'x'.repeat(98); // 100 bytes as JSON text
const CLI = join(process.cwd(), 'dist/cjs/cli/main.js');

class EchoController {
  echo(data) {
    return data;
  }
}
MessagePattern('echo')(EchoController.prototype, 'echo', Object.getOwnPropertyDescriptor(EchoController.prototype, 'echo'));
Controller()(EchoController);
class EchoModule {}
Module({ controllers: [EchoController] })(EchoModule);

/** Each transport: starts its broker (if any), returns the microservice options and a client factory. */
const transports = [
  {
    name: 'Gearman, our job server',
    async start() {
      const port = await freePort();
      const { stop } = await startListeningProcess(process.execPath, [CLI, 'server', '--port', String(port)], port);
      const servers = [`127.0.0.1:${port}`];
      return { stop, server: { strategy: new ServerGearman({ servers, concurrency: 64 }) }, client: () => new ClientGearman({ servers }) };
    },
  },
  {
    name: 'Gearman, gearmand 1.1.20',
    available: () => GEARMAND !== undefined,
    async start() {
      const { port, stop } = await startGearmand();
      const servers = [`127.0.0.1:${port}`];
      return { stop, server: { strategy: new ServerGearman({ servers, concurrency: 64 }) }, client: () => new ClientGearman({ servers }) };
    },
  },
  {
    name: 'Nest TCP',
    async start() {
      const port = await freePort();
      const options = { host: '127.0.0.1', port };
      return {
        stop: async () => undefined,
        server: { transport: Transport.TCP, options },
        client: () => ClientProxyFactory.create({ transport: Transport.TCP, options }),
      };
    },
  },
  {
    name: 'Nest Redis',
    available: () => REDIS_SERVER !== undefined,
    async start() {
      const { port, stop } = await startRedis();
      const options = { host: '127.0.0.1', port };
      return {
        stop,
        server: { transport: Transport.REDIS, options },
        client: () => ClientProxyFactory.create({ transport: Transport.REDIS, options }),
      };
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

/** In a child process: one transport, each concurrency measured for `ms` after a warm-up. */
async function runCell(name, ms) {
  const transport = transports.find((candidate) => candidate.name === name);
  const setup = await transport.start();
  const app = await NestFactory.createMicroservice(EchoModule, { ...setup.server, logger: false });
  const client = setup.client();
  try {
    await app.listen();
    await client.connect();
    const cells = [];
    for (const concurrency of CONCURRENCIES) {
      await measure(client, concurrency, WARMUP_MS);
      const latencies = [];
      const { replies, seconds } = await measure(client, concurrency, ms, latencies);
      latencies.sort((a, b) => a - b);
      // 1001 evenly spaced quantiles stand for the whole distribution when rounds are merged.
      const quantiles = Array.from(
        { length: 1001 },
        (_, i) => latencies[Math.min(latencies.length - 1, Math.floor((i / 1000) * latencies.length))],
      );
      cells.push({ concurrency, replies, seconds, quantiles });
    }
    await new Promise((resolve) => process.stdout.write(`${JSON.stringify(cells)}\n`, resolve));
  } finally {
    await client.close();
    await app.close();
    await setup.stop();
  }
}

function runCellProcess(name, ms) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--cell', name, String(ms)], {
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
  const chosen = transports.filter((transport) => {
    if (ONLY && !ONLY.split(',').some((part) => transport.name.includes(part))) return false;
    if (transport.available && !transport.available()) {
      console.log(`${transport.name}: not installed, skipped`);
      return false;
    }
    return true;
  });
  const totals = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const transport of chosen) {
      for (const cell of await runCellProcess(transport.name, MEASURE_MS / ROUNDS)) {
        const key = `${transport.name}|${cell.concurrency}`;
        const total = totals.get(key) ?? { replies: 0, seconds: 0, weighted: [] };
        total.replies += cell.replies;
        total.seconds += cell.seconds;
        for (const latency of cell.quantiles) total.weighted.push([latency, cell.replies / cell.quantiles.length]);
        totals.set(key, total);
      }
    }
  }
  const results = [];
  for (const concurrency of CONCURRENCIES) {
    for (const transport of chosen) {
      const { replies, seconds, weighted } = totals.get(`${transport.name}|${concurrency}`);
      weighted.sort((a, b) => a[0] - b[0]);
      const quantile = (q) => {
        let seen = 0;
        for (const [latency, weight] of weighted) if ((seen += weight) >= q * replies) return latency;
        return weighted[weighted.length - 1][0];
      };
      const figures = { name: transport.name, concurrency, rate: replies / seconds, p50: quantile(0.5), p99: quantile(0.99) };
      results.push(figures);
      console.log(
        `${transport.name.padEnd(26)} c=${String(concurrency).padEnd(3)} ${figures.rate.toFixed(0).padStart(7)} req/s` +
          `   p50 ${figures.p50.toFixed(3)} ms   p99 ${figures.p99.toFixed(3)} ms`,
      );
    }
  }
  printRatios(results);
}

function printRatios(results) {
  console.log('\nThroughput ratios (Gearman / Nest transport):');
  for (const concurrency of CONCURRENCIES) {
    const of = (name) => results.find((r) => r.name === name && r.concurrency === concurrency);
    for (const gearman of ['Gearman, our job server', 'Gearman, gearmand 1.1.20']) {
      const g = of(gearman);
      if (!g) continue;
      const parts = ['Nest TCP', 'Nest Redis'].filter(of).map((name) => `${(g.rate / of(name).rate).toFixed(2)}x ${name}`);
      if (parts.length > 0) console.log(`  c=${String(concurrency).padEnd(3)} ${gearman.padEnd(26)} ${parts.join('   ')}`);
    }
  }
}

const started = Date.now();
const [mode, cellName, cellMs] = process.argv.slice(2);
const main = mode === '--cell' ? runCell(cellName, Number(cellMs)) : run();
main.then(
  () => {
    if (mode !== '--cell') console.log(`\nnest.bench.mjs done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
