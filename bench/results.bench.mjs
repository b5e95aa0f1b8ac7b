// Batches and stored results, side by side with their anchors in one run:
//   1. 10,000 small items through ClientGearman.sendBatch() against the same 10,000 as individual
//      send() calls with the same number in flight (64), on our job server and on gearmand;
//   2. the latency of ClientGearman.getResult() for a background job that ended: from our job server
//      (gearman.result) and from a Redis result store (gearmand deployments), p50 and p99.
//   npm run build && node bench/results.bench.mjs
// BENCH_BATCH_ITEMS (default 10000), BENCH_FETCHES (default 2000) and BENCH_ROUNDS (default 3) change
// the sizes. Client and microservice share this process (as in nest.bench.mjs); the brokers (our
// job server through its CLI, gearmand, redis-server) run as processes of their own. Modes take
// turns round after round so that the machine's load weighs on each alike.
import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { firstValueFrom, from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { ClientGearman, RedisResultStore, ServerGearman } from '../dist/esm/index.js';
import { freePort, GEARMAND, REDIS_SERVER, startGearmand, startListeningProcess, startRedis } from './support/brokers.mjs';

const ITEMS = Number(process.env.BENCH_BATCH_ITEMS ?? 10_000);
const FETCHES = Number(process.env.BENCH_FETCHES ?? 2_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = 64;
const CLI = join(process.cwd(), 'dist/cjs/cli/main.js');
const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

class DoubleController {
  double(item) {
    return item.n * 2;
  }
}
MessagePattern('bench.double')(DoubleController.prototype, 'double', Object.getOwnPropertyDescriptor(DoubleController.prototype, 'double'));
Controller()(DoubleController);
class BenchModule {}
Module({ controllers: [DoubleController] })(BenchModule);

const items = Array.from({ length: ITEMS }, (_, n) => ({ n }));

async function withApp(servers, resultStore, body) {
  const app = await NestFactory.createMicroservice(BenchModule, {
    strategy: new ServerGearman({ servers, concurrency: CONCURRENCY, resultStore }),
    logger: false,
  });
  await app.listen();
  const client = new ClientGearman({ servers, resultStore, logger: quiet });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.close();
    await app.close();
  }
}

async function timeIt(run) {
  const start = process.hrtime.bigint();
  const outcomes = await run();
  if (outcomes.length !== ITEMS) throw new Error(`expected ${ITEMS} outcomes, got ${outcomes.length}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const batchModes = {
  'send() x N': (client) =>
    timeIt(() =>
      lastValueFrom(
        from(items).pipe(
          mergeMap((item) => client.send('bench.double', item), CONCURRENCY),
          toArray(),
        ),
      ),
    ),
  'sendBatch()': (client) =>
    timeIt(() => lastValueFrom(client.sendBatch('bench.double', items, { concurrency: CONCURRENCY }).pipe(toArray()))),
};

async function batchBench(brokerName, servers) {
  const seconds = Object.fromEntries(Object.keys(batchModes).map((mode) => [mode, 0]));
  await withApp(servers, undefined, async (client) => {
    for (const mode of Object.values(batchModes)) await mode(client); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const [mode, run] of Object.entries(batchModes)) seconds[mode] += await run(client);
    }
  });
  const rate = (mode) => (ITEMS * ROUNDS) / seconds[mode];
  for (const mode of Object.keys(batchModes)) {
    console.log(`${brokerName.padEnd(24)} ${mode.padEnd(12)} ${rate(mode).toFixed(0).padStart(7)} items/s`);
  }
  console.log(`${brokerName.padEnd(24)} sendBatch() / send() x N: ${(rate('sendBatch()') / rate('send() x N')).toFixed(2)}x`);
}

/** Latency of getResult() on ended background jobs, sequential calls. */
async function fetchBench(name, servers, resultStore) {
  await withApp(servers, resultStore, async (client) => {
    const handles = await Promise.all(Array.from({ length: 200 }, (_, n) => firstValueFrom(client.emit('bench.double', { n }))));
    for (const handle of handles) {
      const state = await client.waitForResult(handle, { timeoutMs: 30_000 });
      if (state.state !== 'completed') throw new Error(`${name}: job ${handle} is ${state.state}`);
    }
    const latencies = [];
    for (let i = 0; i < FETCHES + 200; i++) {
      const start = process.hrtime.bigint();
      const state = await client.getResult(handles[i % handles.length]);
      if (state.state !== 'completed') throw new Error(`${name}: fetch answered ${state.state}`);
      if (i >= 200) latencies.push(Number(process.hrtime.bigint() - start) / 1e6); // the first 200 warm up
    }
    latencies.sort((a, b) => a - b);
    const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    console.log(`${name.padEnd(40)} getResult() p50 ${at(0.5).toFixed(3)} ms   p99 ${at(0.99).toFixed(3)} ms   (${FETCHES} fetches)`);
  });
}

async function main() {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run `npm run build` first');
  const port = await freePort();
  const ours = await startListeningProcess(process.execPath, [CLI, 'server', '--port', String(port)], port);
  const gearmand = GEARMAND ? await startGearmand() : undefined;
  const redis = REDIS_SERVER ? await startRedis() : undefined;
  try {
    console.log(`Batch of ${ITEMS} small items, ${CONCURRENCY} in flight, ${ROUNDS} rounds per mode:`);
    await batchBench('our job server', [`127.0.0.1:${port}`]);
    if (gearmand) await batchBench('gearmand 1.1.20', [`127.0.0.1:${gearmand.port}`]);
    else console.log('gearmand: not installed, skipped');

    console.log('\nResult fetch latency, one fetch at a time:');
    await fetchBench('our job server (gearman.result)', [`127.0.0.1:${port}`]).catch((error) =>
      console.log(`our job server: ${error.message}`),
    );
    if (gearmand && redis) {
      const store = new RedisResultStore({ redis: `redis://127.0.0.1:${redis.port}`, logger: quiet });
      try {
        await fetchBench('gearmand 1.1.20 + Redis result store', [`127.0.0.1:${gearmand.port}`], store);
      } finally {
        await store.close();
      }
    } else console.log('gearmand or redis-server not installed: the Redis figure is skipped');
  } finally {
    await ours.stop();
    await gearmand?.stop();
    await redis?.stop();
  }
}

const started = Date.now();
main().then(
  () => {
    console.log(`\nresults.bench.mjs done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.exit(0);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
