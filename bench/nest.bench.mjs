// Nest round trips: ClientProxy.send('echo', 100-byte payload) -> handler -> reply, at concurrency
// 1 and 64, over ClientGearman/ServerGearman on our job server and on gearmand, and over Nest's own
// TCP and Redis transports, side by side in one run.
//   npm run build && node bench/nest.bench.mjs
// BENCH_NEST_MS sets the measuring time per cell; BENCH_NEST_ONLY=<text> keeps the transports named so.
// Each Nest client and its microservice share this process; the brokers (our job server through
// its CLI, gearmand, redis-server) run as processes of their own, as they would in production.
// All four run at once and take turns in slices, so the figures of one run are comparable.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, MessagePattern, Transport } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, ServerGearman } from '../dist/esm/index.js';

const MEASURE_MS = Number(process.env.BENCH_NEST_MS ?? 3000);
const ROUNDS = 3;
const ONLY = process.env.BENCH_NEST_ONLY; // e.g. "our job server": measure the transports whose name contains it
const WARMUP_MS = 500;
const CONCURRENCIES = [1, 64];
const PAYLOAD = 'x'.repeat(98); // 100 bytes as JSON text
const CLI = join(process.cwd(), 'dist/cjs/cli/main.js');
const GEARMAND = ['/usr/sbin/gearmand', '/usr/local/sbin/gearmand'].find((path) => existsSync(path));
const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((path) => existsSync(path));

class EchoController {
  echo(data) {
    return data;
  }
}
MessagePattern('echo')(EchoController.prototype, 'echo', Object.getOwnPropertyDescriptor(EchoController.prototype, 'echo'));
Controller()(EchoController);
class EchoModule {}
Module({ controllers: [EchoController] })(EchoModule);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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
  for (let attempt = 0; attempt < 400; attempt++) {
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

async function startProcess(command, args, port) {
  const child = spawn(command, args, { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await waitForPort(port);
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
}

/** Each transport: starts its broker (if any), returns the microservice options and a client factory. */
const transports = [
  {
    name: 'Gearman, our job server',
    async start() {
      const port = await freePort();
      const stop = await startProcess(process.execPath, [CLI, 'server', '--port', String(port)], port);
      const servers = [`127.0.0.1:${port}`];
      return { stop, server: { strategy: new ServerGearman({ servers, concurrency: 64 }) }, client: () => new ClientGearman({ servers }) };
    },
  },
  {
    name: 'Gearman, gearmand 1.1.20',
    available: () => GEARMAND !== undefined,
    async start() {
      const port = await freePort();
      const stop = await startProcess(GEARMAND, ['--listen', '127.0.0.1', '--port', String(port), '--log-file', 'none'], port);
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
    available: () => REDIS !== undefined,
    async start() {
      const port = await freePort();
      const stop = await startProcess(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], port);
      const options = { host: '127.0.0.1', port };
      return { stop, server: { transport: Transport.REDIS, options }, client: () => ClientProxyFactory.create({ transport: Transport.REDIS, options }) };
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

async function run() {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` first');
  const running = [];
  try {
    for (const transport of transports) {
      if (ONLY && !transport.name.includes(ONLY)) continue;
      if (transport.available && !transport.available()) {
        console.log(`${transport.name}: not installed, skipped`);
        continue;
      }
      const setup = await transport.start();
      const entry = { name: transport.name, stop: setup.stop };
      running.push(entry);
      entry.app = await NestFactory.createMicroservice(EchoModule, { ...setup.server, logger: false });
      await entry.app.listen();
      entry.client = setup.client();
      await entry.client.connect();
    }
    // The transports take turns (ROUNDS slices each) so that a load change on the machine
    // weighs on all of them alike rather than on whichever happened to run at that moment.
    const results = [];
    for (const concurrency of CONCURRENCIES) {
      for (const entry of running) await measure(entry.client, concurrency, WARMUP_MS);
      const totals = running.map(() => ({ replies: 0, seconds: 0, latencies: [] }));
      for (let round = 0; round < ROUNDS; round++) {
        for (const [index, entry] of running.entries()) {
          const { replies, seconds } = await measure(entry.client, concurrency, MEASURE_MS / ROUNDS, totals[index].latencies);
          totals[index].replies += replies;
          totals[index].seconds += seconds;
        }
      }
      for (const [index, entry] of running.entries()) {
        const { replies, seconds, latencies } = totals[index];
        latencies.sort((a, b) => a - b);
        const quantile = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
        const figures = { name: entry.name, concurrency, rate: replies / seconds, p50: quantile(0.5), p99: quantile(0.99) };
        results.push(figures);
        console.log(
          `${entry.name.padEnd(26)} c=${String(concurrency).padEnd(3)} ${figures.rate.toFixed(0).padStart(7)} req/s` +
            `   p50 ${figures.p50.toFixed(3)} ms   p99 ${figures.p99.toFixed(3)} ms`,
        );
      }
    }
    printRatios(results);
  } finally {
    for (const entry of running) {
      await entry.client?.close();
      await entry.app?.close();
      await entry.stop();
    }
  }
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
run().then(
  () => {
    console.log(`\nnest.bench.mjs done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
