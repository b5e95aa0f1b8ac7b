import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import type { GearmanBatchOutcome } from '../../lib/nest/gearman-job-state.js';
import { GearmanRecordBuilder } from '../../lib/nest/gearman-record-builder.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { RedisResultStore } from '../../lib/results/redis-result-store.js';
import { describeWithPeers, startGearmandPair } from '../support/gearmand.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { quietLogger } from '../client/support/harness.js';

/** Attempts run, by item. */
const attempts = new Map<string, number[]>();
/** The handler of `retried.flaky` fails until this attempt. */
let succeedAt = Infinity;

@Controller()
class FlakyController {
  @EventPattern<string>('retried.flaky')
  async flaky(@Payload() item: { id: string }, @Ctx() ctx: GearmanContext) {
    attempts.set(item.id, [...(attempts.get(item.id) ?? []), ctx.getAttempt()]);
    ctx.sendStatus(ctx.getAttempt(), 3);
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (ctx.getAttempt() < succeedAt) throw new Error(`attempt ${ctx.getAttempt()} of ${item.id} failed`);
  }

  /** Every odd item fails its first attempt: the pattern's retry policy runs it again. */
  @EventPattern<string>('retried.item', { retry: { attempts: 2 } })
  item(@Payload() item: { id: string; index: number }, @Ctx() ctx: GearmanContext) {
    attempts.set(item.id, [...(attempts.get(item.id) ?? []), ctx.getAttempt()]);
    if (item.index % 2 === 1 && ctx.getAttempt() === 1) throw new Error(`first attempt of ${item.id} failed`);
  }

  @MessagePattern('retried.gather')
  gather(@Payload() outcomes: GearmanBatchOutcome[]) {
    return { ended: outcomes.length, failed: outcomes.filter((outcome) => 'error' in outcome).length };
  }
}

@Module({ controllers: [FlakyController] })
class FlakyModule {}

interface Deployment {
  readonly client: ClientGearman;
  stop(): Promise<void>;
}

/** Our job server (it keeps the results); the worker app and the caller are separate clients of it. */
async function onOurServer(): Promise<Deployment> {
  const server = new GearmanJobServer({ port: 0, logger: false });
  await server.listen();
  const { host, port } = server.address();
  const servers = [`${host}:${port}`];
  const app = await NestFactory.createMicroservice(FlakyModule, {
    strategy: new ServerGearman({ servers, logger: quietLogger }),
    logger: false,
  });
  await app.listen();
  const client = new ClientGearman({ servers, logger: quietLogger });
  return {
    client,
    stop: async () => {
      await client.close();
      await app.close();
      await server.close();
    },
  };
}

/** Two gearmand servers and a Redis result store, the worker app and the caller each with their own. */
async function onGearmand(redis: RunningRedis): Promise<Deployment> {
  const { gearmands, servers } = await startGearmandPair();
  const keyPrefix = `retries${Math.random()}:`;
  const stores = [0, 1].map(() => new RedisResultStore({ redis: redis.url, keyPrefix, logger: quietLogger }));
  const app: INestMicroservice = await NestFactory.createMicroservice(FlakyModule, {
    strategy: new ServerGearman({ servers, resultStore: stores[0], logger: quietLogger }),
    logger: false,
  });
  await app.listen();
  const client = new ClientGearman({ servers, resultStore: stores[1], logger: quietLogger });
  return {
    client,
    stop: async () => {
      await client.close();
      await app.close();
      for (const store of stores) await store.close();
      await Promise.all(gearmands.map((gearmand) => gearmand.stop()));
    },
  };
}

/**
 * A retried background job (durable's retries: each attempt a job of its own, `<unique>#<n>`) has
 * one result: the handle and unique id emit() gave lead to its last attempt's outcome.
 */
function retriedJobs(start: () => Promise<Deployment>): void {
  let deployment: Deployment;
  beforeEach(async () => {
    attempts.clear();
    succeedAt = Infinity;
    deployment = await start();
  }, 30_000);
  afterEach(() => deployment.stop());

  test('a wait on the first handle outlasts the failed attempts and ends with the last one', async () => {
    succeedAt = 3;
    const { client } = deployment;
    const record = new GearmanRecordBuilder({ id: 'a' }).setUnique('retried-a').setRetry({ attempts: 5 }).build();
    const handle = await firstValueFrom(client.emit<string>('retried.flaky', record));
    const state = await client.waitForResult(handle, { timeoutMs: 10_000 });
    expect(attempts.get('a')).toEqual([1, 2, 3]);
    expect(state).toMatchObject({ state: 'completed', unique: 'retried-a', functionName: 'retried.flaky', progress: { numerator: 3 } });
    expect(await client.getResult(handle)).toMatchObject({ state: 'completed' });
    expect(await client.getResult('retried-a')).toMatchObject({ state: 'completed' });
  });

  test('between attempts (a back-off) the job reads as queued, never failed; out of attempts it is failed', async () => {
    const { client } = deployment;
    // Job servers schedule in whole seconds: each retry waits for the next second.
    const backoff = { type: 'fixed', delayMs: 1 } as const;
    const record = new GearmanRecordBuilder({ id: 'b' }).setUnique('retried-b').setRetry({ attempts: 3, backoff }).build();
    const handle = await firstValueFrom(client.emit<string>('retried.flaky', record));
    const seen = new Set<string>();
    for (;;) {
      const state = await client.getResult(handle);
      seen.add(state.state);
      if (state.state !== 'queued' && state.state !== 'running') {
        // The last attempt's error (a plain Error reads as Nest's 'Internal server error').
        expect(state).toMatchObject({ state: 'failed', error: { message: 'Internal server error' } });
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(attempts.get('b')).toEqual([1, 2, 3]);
    expect([...seen].sort()).toEqual(['failed', 'queued', 'running']);
    expect(await client.getResult('retried-b')).toMatchObject({ state: 'failed' });
  });

  test('emitBatch(): an item retried by its pattern counts once, with its last outcome', async () => {
    const { client } = deployment;
    const items = Array.from({ length: 6 }, (_, index) => ({ id: `i${index}`, index }));
    const batch = await client.emitBatch('retried.item', items, { gather: 'retried.gather', failFast: true });
    const state = await client.waitForResult(batch, { timeoutMs: 10_000 });
    expect(state).toMatchObject({ state: 'completed', value: { ended: 6, failed: 0 }, batch: { total: 6, ended: 6, failed: 0 } });
    for (const { id, index } of items) expect(attempts.get(id)).toEqual(index % 2 === 1 ? [1, 2] : [1]);
  });
}

describe('Retried jobs and their results (GearmanJobServer)', () => retriedJobs(onOurServer));

describeWithPeers(['gearmand', 'redis-server'], 'Retried jobs and their results (two gearmand, Redis result store)', () => {
  let redis: RunningRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());
  retriedJobs(() => onGearmand(redis));
});
