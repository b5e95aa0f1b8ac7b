// What the default `concurrency` of ServerGearman (jobs one app runs at once) trades, measured with
// the client app, our job server and the worker apps each in a process of their own:
//
// 1. Throughput of 64 callers against one worker app, for an instant handler and for one that waits
//    10 ms (as a handler calling a database or an HTTP service does), at each concurrency.
// 2. Load sharing: four worker apps whose handler waits 100 ms, and a burst of 1,024 jobs: how many
//    each app ran, and how long the burst took, at each concurrency.
//
//   npm run build && node bench/concurrency.bench.mjs
// BENCH_CONCURRENCY_MS sets the measuring time per cell of part 1 (default 2000).
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GearmanClient, ServerGearman } from '../dist/esm/index.js';
import { freePort, startListeningProcess } from './support/brokers.mjs';

const MEASURE_MS = Number(process.env.BENCH_CONCURRENCY_MS ?? 2000);
const SCRIPT = fileURLToPath(import.meta.url);
const CLI = join(process.cwd(), 'dist/cjs/cli/main.js');
const THROUGHPUT_CONCURRENCIES = [1, 8, 16, 32, 64, 128];
const SHARING_CONCURRENCIES = [16, 64, 256, 1024];
const CALLERS = 64;
const BURST = 1024;
const WORKERS = 4;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class WorkController {
  instant(data) {
    return data;
  }
  async waits(data) {
    await sleep(10);
    return data;
  }
  async slow() {
    await sleep(100);
    return process.env.WORKER_NAME;
  }
}
for (const [method, pattern] of [
  ['instant', 'instant'],
  ['waits', 'waits-10ms'],
  ['slow', 'waits-100ms'],
]) {
  MessagePattern(pattern)(WorkController.prototype, method, Object.getOwnPropertyDescriptor(WorkController.prototype, method));
}
Controller()(WorkController);
class WorkModule {}
Module({ controllers: [WorkController] })(WorkModule);

/** In a child process: a worker app with the given concurrency, until killed. */
async function serve(port, concurrency) {
  const strategy = new ServerGearman({ servers: [`127.0.0.1:${port}`], concurrency });
  const app = await NestFactory.createMicroservice(WorkModule, { strategy, logger: false });
  await app.listen();
  process.stdout.write('ready\n');
}

/** In a child process: CALLERS callers of `pattern` for MEASURE_MS; prints the replies per second. */
async function call(port, pattern) {
  const client = new ClientGearman({ servers: [`127.0.0.1:${port}`] });
  await client.connect();
  const run = async (ms) => {
    const stopAt = Date.now() + ms;
    let replies = 0;
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (Date.now() < stopAt) {
          await lastValueFrom(client.send(pattern, 'x'.repeat(98)));
          replies++;
        }
      }),
    );
    return replies / (ms / 1000);
  };
  await run(300);
  process.stdout.write(`${JSON.stringify(await run(MEASURE_MS))}\n`);
  await client.close();
}

function child(args, env = {}) {
  const proc = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  let out = '';
  proc.stdout.on('data', (chunk) => (out += chunk));
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const ready = new Promise((resolve, reject) => {
    proc.stdout.on('data', () => out.includes('ready') && resolve());
    exited.then((code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  ready.catch(() => undefined);
  return {
    ready,
    output: exited.then(() => out),
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

async function jobServer() {
  const port = await freePort();
  const { stop } = await startListeningProcess(process.execPath, [CLI, 'server', '--port', String(port)], port);
  return { port, stop };
}

async function throughput(concurrency, pattern) {
  const server = await jobServer();
  const worker = child(['--serve', String(server.port), String(concurrency)]);
  try {
    await worker.ready;
    const out = await child(['--call', String(server.port), pattern]).output;
    return JSON.parse(out.trim().split('\n').pop());
  } finally {
    await worker.kill();
    await server.stop();
  }
}

async function sharing(concurrency) {
  const server = await jobServer();
  const workers = Array.from({ length: WORKERS }, (_, i) =>
    child(['--serve', String(server.port), String(concurrency)], { WORKER_NAME: `app-${i + 1}` }),
  );
  const client = new GearmanClient({ servers: [`127.0.0.1:${server.port}`] });
  try {
    await Promise.all(workers.map((worker) => worker.ready));
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: BURST }, () => client.submitJob('waits-100ms', '').result));
    const ms = Date.now() - started;
    const shares = new Map(Array.from({ length: WORKERS }, (_, i) => [`app-${i + 1}`, 0]));
    for (const result of results) {
      const name = JSON.parse(result.toString());
      shares.set(name, shares.get(name) + 1);
    }
    return { ms, shares: [...shares.values()] };
  } finally {
    await client.close();
    await Promise.all(workers.map((worker) => worker.kill()));
    await server.stop();
  }
}

async function run() {
  console.log(`1. ${CALLERS} callers against one worker app, replies/s by the app's concurrency:`);
  console.log(`   ${'concurrency'.padEnd(12)} ${'instant handler'.padStart(16)} ${'10 ms handler'.padStart(14)}`);
  for (const concurrency of THROUGHPUT_CONCURRENCIES) {
    const instant = await throughput(concurrency, 'instant');
    const waits = await throughput(concurrency, 'waits-10ms');
    console.log(`   ${String(concurrency).padEnd(12)} ${instant.toFixed(0).padStart(16)} ${waits.toFixed(0).padStart(14)}`);
  }
  console.log(`\n2. ${WORKERS} worker apps, a handler that waits 100 ms, a burst of ${BURST} jobs: jobs per app, time for the burst:`);
  for (const concurrency of SHARING_CONCURRENCIES) {
    const { ms, shares } = await sharing(concurrency);
    const spread = `${Math.min(...shares)}-${Math.max(...shares)}`;
    console.log(
      `   concurrency ${String(concurrency).padEnd(5)} jobs per app ${shares.join(' / ').padEnd(22)} (${spread.padEnd(9)})  ${ms} ms`,
    );
  }
}

const [mode, ...args] = process.argv.slice(2);
const main = mode === '--serve' ? serve(Number(args[0]), Number(args[1])) : mode === '--call' ? call(Number(args[0]), args[1]) : run();
main.then(
  () => {
    if (mode !== '--serve') process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
