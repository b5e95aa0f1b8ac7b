import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { GearmanJobUnknownError, GearmanResultTimeoutError } from '../../lib/common/errors.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { GearmanRecordBuilder } from '../../lib/nest/gearman-record-builder.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { GearmanModule } from '../../lib/nest/module/gearman.module.js';
import { RedisResultStore } from '../../lib/results/redis-result-store.js';
import { describeWithPeers, startGearmand, startGearmandPair, type RunningGearmand } from '../support/gearmand.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { waitUntil } from '../support/processes.js';
import { quietLogger } from '../client/support/harness.js';

let gate: Promise<void> = Promise.resolve();

@Controller()
class ImageController {
  @MessagePattern('results.resize')
  async resize(@Payload() image: { id: number }, @Ctx() ctx: GearmanContext) {
    ctx.sendStatus(1, 2);
    ctx.sendData({ step: 'decoded', id: image.id });
    await gate;
    return { id: image.id, width: 128 };
  }

  @MessagePattern('results.refuse')
  refuse(@Payload() image: { id: number }) {
    throw new RpcException({ code: 'TOO_BIG', id: image.id });
  }
}

@Module({ controllers: [ImageController] })
class ImageModule {}

/**
 * Results later on gearmand, which keeps none: the workers record into Redis and ClientGearman reads
 * it, whichever of two gearmand servers ran the job.
 */
describeWithPeers(['gearmand', 'redis-server'], 'ClientGearman results through a Redis result store, two gearmand servers', () => {
  let redis: RunningRedis;
  let gearmands: RunningGearmand[];
  let app: INestMicroservice;
  let client: ClientGearman;
  let stores: RedisResultStore[];

  beforeAll(async () => {
    redis = await startRedis();
    let servers: string[];
    ({ gearmands, servers } = await startGearmandPair());
    // The worker app and the calling app each have their own store, as two processes would.
    stores = [0, 1].map(() => new RedisResultStore({ redis: redis.url, logger: quietLogger }));
    app = await NestFactory.createMicroservice(ImageModule, {
      strategy: new ServerGearman({ servers, concurrency: 8, resultStore: stores[0] }),
      logger: false,
    });
    await app.listen();
    client = new ClientGearman({ servers, resultStore: stores[1] });
    await client.connect();
  }, 30_000);

  afterAll(async () => {
    await client?.close();
    await app?.close();
    for (const store of stores ?? []) await store.close();
    await Promise.all((gearmands ?? []).map((gearmand) => gearmand.stop()));
    await redis?.stop();
  });

  test('emit() returns the handle; the job reads as queued at once, then completed with its decoded value', async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const handles = await Promise.all([1, 2, 3, 4].map((id) => firstValueFrom(client.emit<string>('results.resize', { id }))));
    for (const handle of handles) expect(['queued', 'running']).toContain((await client.getResult(handle)).state);
    open();
    for (const [index, handle] of handles.entries()) {
      const state = await client.waitForResult<{ id: number; width: number }>(handle, { timeoutMs: 10_000 });
      expect(state).toMatchObject({
        state: 'completed',
        handle,
        functionName: 'results.resize',
        value: { id: index + 1, width: 128 },
        data: [{ step: 'decoded', id: index + 1 }],
        progress: { numerator: 1, denominator: 2 },
      });
      expect(await client.getResult(handle)).toEqual(state);
    }
  });

  test('send() with a background record is recorded as queued, as emit() is', async () => {
    // No worker serves it: the store knows the job only from the caller's record.
    const record = new GearmanRecordBuilder({ id: 10 }).setBackground().build();
    const handle = await lastValueFrom(client.send<string>('results.nobody', record));
    expect(await client.getResult(handle)).toMatchObject({ state: 'queued', handle, functionName: 'results.nobody' });
  });

  test('a failed job holds the same error send() reports', async () => {
    const sent = await lastValueFrom(client.send('results.refuse', { id: 9 })).catch((error: unknown) => error);
    const handle = await firstValueFrom(client.emit<string>('results.refuse', { id: 9 }));
    const state = await client.waitForResult(handle, { timeoutMs: 10_000 });
    expect(state).toMatchObject({ state: 'failed', error: { code: 'TOO_BIG', id: 9 } });
    expect(state.state === 'failed' && state.error).toEqual(sent);
  });

  test('a caller-given unique id finds the job too', async () => {
    const record = new GearmanRecordBuilder({ id: 5 }).setUnique('resize-5').build();
    await firstValueFrom(client.emit('results.resize', record));
    expect(await client.waitForResult('resize-5', { timeoutMs: 10_000 })).toMatchObject({ state: 'completed', unique: 'resize-5' });
  });

  test('followResult() streams a background job like send() streams a foreground one', async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const handle = await firstValueFrom(client.emit<string>('results.resize', { id: 7 }));
    const events = lastValueFrom(client.followResult(handle, { timeoutMs: 10_000 }).pipe(toArray()));
    // Waiting for the handler's first data before opening makes the order deterministic.
    await waitUntil(async () => (await client.getResult(handle)).state === 'running', 'the job to run', 10_000);
    open();
    const seen = await events;
    expect(seen[seen.length - 1]).toEqual({ type: 'result', value: { id: 7, width: 128 } });
    expect(seen).toContainEqual({ type: 'data', value: { step: 'decoded', id: 7 } });
    await expect(lastValueFrom(client.followResult('no-such-job'))).rejects.toBeInstanceOf(GearmanJobUnknownError);
  });

  test('waitForResult() gives up after timeoutMs with the state it last saw, decoded', async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const handle = await firstValueFrom(client.emit<string>('results.resize', { id: 8 }));
    await waitUntil(async () => (await client.getResult(handle)).state === 'running', 'the job to run', 10_000);
    const error = await client.waitForResult(handle, { timeoutMs: 100 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GearmanResultTimeoutError);
    expect(error).toMatchObject({ lastState: { state: 'running', progress: { numerator: 1, denominator: 2 } } });
    open();
    expect(await client.waitForResult(handle, { timeoutMs: 10_000 })).toMatchObject({ state: 'completed' });
  });
});

describeWithPeers(['gearmand', 'redis-server'], 'GearmanModule with a resultStore', () => {
  test('the module gives the store to its client and to its workers, and closes it on shutdown', async () => {
    const redis = await startRedis();
    const gearmand = await startGearmand();
    const store = new RedisResultStore({ redis: redis.url, logger: quietLogger });
    try {
      @Module({
        imports: [GearmanModule.forRoot({ servers: [`127.0.0.1:${gearmand.port}`], resultStore: store })],
        controllers: [ImageController],
      })
      class StoreModule {}
      const app = await NestFactory.createMicroservice(StoreModule, { ...GearmanModule.microservice(), logger: false });
      await app.listen();
      const client = app.get(ClientGearman);
      const handle = await firstValueFrom(client.emit<string>('results.resize', { id: 11 }));
      expect(await client.waitForResult(handle, { timeoutMs: 10_000 })).toMatchObject({
        state: 'completed',
        value: { id: 11, width: 128 },
      });
      await app.close();
      await expect(store.get(handle)).rejects.toThrow(/closed/);
    } finally {
      await store.close();
      await gearmand.stop();
      await redis.stop();
    }
  });
});
