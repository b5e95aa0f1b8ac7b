import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { lastValueFrom, take, toArray } from 'rxjs';
import { GearmanBatchError } from '../../lib/common/errors.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import type { GearmanBatchOutcome } from '../../lib/nest/gearman-job-state.js';
import { GearmanRecordBuilder } from '../../lib/nest/gearman-record-builder.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { adminCommand } from '../client/support/admin.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

const ran: number[] = [];
const workerOf = new Map<number, string>();
let running = 0;
let mostRunning = 0;
let gate: Promise<void> = Promise.resolve();

@Controller()
class SquareController {
  @MessagePattern('batch.square')
  async square(@Payload() n: number, @Ctx() ctx: GearmanContext) {
    ran.push(n);
    workerOf.set(n, ctx.getHandle());
    running++;
    mostRunning = Math.max(mostRunning, running);
    await gate;
    await new Promise((resolve) => setTimeout(resolve, 1));
    running--;
    if (n % 10 === 7) throw new RpcException({ code: 'SEVEN', n });
    return n * n;
  }
}

@Controller()
class SplitterController {
  /** A worker as the splitter: it fans its job out as sub-jobs and gathers them itself. */
  @MessagePattern('batch.split-sum')
  async splitSum(@Payload() numbers: number[], @Ctx() ctx: GearmanContext) {
    const outcomes = await lastValueFrom(ctx.sendBatch<number>('batch.square', numbers, { concurrency: 4 }).pipe(toArray()));
    return outcomes.reduce((sum, outcome) => sum + ('value' in outcome ? outcome.value : 0), 0);
  }
}

@Module({ controllers: [SquareController, SplitterController] })
class SquareModule {}

/**
 * Lets the jobs an earlier test released end first: Gearman has no cancel, so a released job still
 * runs (queued ones too), and the counters would see it.
 */
async function reset(servers: string[]): Promise<void> {
  for (const server of servers) {
    const port = Number(server.split(':')[1]);
    await eventually(async () => {
      const row = (await adminCommand(port, 'status')).find((line) => line.startsWith('batch.square\t'));
      return !row || row.split('\t')[1] === '0';
    }, 'the jobs an earlier test released to end');
  }
  await eventually(() => running === 0, 'the jobs still running to end');
  ran.length = 0;
  workerOf.clear();
  running = 0;
  mostRunning = 0;
  gate = Promise.resolve();
}

const byIndex = (outcomes: GearmanBatchOutcome[]) => [...outcomes].sort((a, b) => a.index - b.index);

describeOnJobServers('ClientGearman.sendBatch()', (kind) => {
  let jobServer: JobServerUnderTest;
  let app: INestMicroservice;
  let client: ClientGearman;

  beforeAll(async () => {
    jobServer = await startJobServer(kind);
    app = await NestFactory.createMicroservice(SquareModule, {
      strategy: new ServerGearman({ servers: jobServer.servers, concurrency: 16 }),
      logger: false,
    });
    await app.listen();
    client = new ClientGearman({ servers: jobServer.servers });
  });
  beforeEach(() => reset(jobServer.servers));
  afterAll(async () => {
    await client?.close();
    await app?.close();
    await jobServer?.stop();
  });

  test('emits every outcome once, as it ends, and completes; failFast: false keeps the failures as outcomes', async () => {
    const items = Array.from({ length: 200 }, (_, n) => n);
    const outcomes = await lastValueFrom(client.sendBatch<number>('batch.square', items, { failFast: false }).pipe(toArray()));
    expect(byIndex(outcomes)).toEqual(
      items.map((n) => (n % 10 === 7 ? { index: n, error: { code: 'SEVEN', n } } : { index: n, value: n * n })),
    );
    expect([...ran].sort((a, b) => a - b)).toEqual(items);
  });

  test('never has more than `concurrency` items in flight', async () => {
    await lastValueFrom(
      client
        .sendBatch(
          'batch.square',
          Array.from({ length: 60 }, (_, n) => n * 10),
          { concurrency: 5 },
        )
        .pipe(toArray()),
    );
    expect(ran).toHaveLength(60);
    expect(mostRunning).toBeGreaterThan(1);
    expect(mostRunning).toBeLessThanOrEqual(5);
  });

  test('failFast (the default) errors at the first failure with its index and the error send() reports, and submits no more', async () => {
    const items = Array.from({ length: 100 }, (_, n) => n);
    const error = await lastValueFrom(client.sendBatch('batch.square', items, { concurrency: 2 }).pipe(toArray())).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(GearmanBatchError);
    expect(error).toMatchObject({ code: 'BATCH_FAILED', index: 7, error: { code: 'SEVEN', n: 7 } });
    expect(ran.length).toBeLessThan(20);
  });

  test('unsubscribing submits nothing more: items not started never run', async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const items = Array.from({ length: 50 }, (_, n) => n * 10);
    const firstTwo = lastValueFrom(client.sendBatch('batch.square', items, { concurrency: 4 }).pipe(take(2), toArray()));
    await eventually(() => running === 4, 'four items running');
    open();
    expect(await firstTwo).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The four in flight, and the one item that took the first ended one's place.
    expect(ran.length).toBeLessThanOrEqual(5);
  });

  test('zero items complete at once; an item that cannot be encoded fails alone, naming its index', async () => {
    expect(await lastValueFrom(client.sendBatch('batch.square', []).pipe(toArray()))).toEqual([]);
    const outcomes = await lastValueFrom(client.sendBatch('batch.square', [1, () => 2, 3], { failFast: false }).pipe(toArray()));
    expect(byIndex(outcomes)).toEqual([
      { index: 0, value: 1 },
      { index: 1, error: expect.any(TypeError) },
      { index: 2, value: 9 },
    ]);
    const failed = await lastValueFrom(client.sendBatch('batch.square', [1, 10n, 3])).catch((error: unknown) => error);
    expect(failed).toMatchObject({ index: 1, error: expect.any(TypeError) });
  });

  test('a handler splits its own job with ctx.sendBatch() and gathers the sub-jobs', async () => {
    const numbers = [1, 2, 3, 4, 5, 6, 8, 9];
    expect(await lastValueFrom(client.send('batch.split-sum', numbers))).toBe(numbers.reduce((sum, n) => sum + n * n, 0));
    expect([...ran].sort((a, b) => a - b)).toEqual(numbers);
  });

  test('items may be GearmanRecords (a priority or unique id per item)', async () => {
    const items = [2, 3].map((n) => new GearmanRecordBuilder(n).setPriority('high').build());
    expect(byIndex(await lastValueFrom(client.sendBatch('batch.square', items).pipe(toArray())))).toEqual([
      { index: 0, value: 4 },
      { index: 1, value: 9 },
    ]);
  });
});

describe('ClientGearman.sendBatch() over two job servers', () => {
  const servers: GearmanJobServer[] = [];
  let app: INestMicroservice;
  let client: ClientGearman;

  beforeAll(async () => {
    for (const prefix of ['H:a', 'H:b']) {
      const server = new GearmanJobServer({ port: 0, logger: false, jobHandlePrefix: prefix });
      await server.listen();
      servers.push(server);
    }
    const addresses = servers.map((server) => `127.0.0.1:${server.address().port}`);
    app = await NestFactory.createMicroservice(SquareModule, {
      strategy: new ServerGearman({ servers: addresses, concurrency: 8 }),
      logger: false,
    });
    await app.listen();
    client = new ClientGearman({ servers: addresses });
    await client.connect();
    await eventually(() => client.unwrap().connectedServers.length === 2, 'both servers connected');
  });
  beforeEach(() => reset(servers.map((server) => `127.0.0.1:${server.address().port}`)));
  afterAll(async () => {
    await client?.close();
    await app?.close();
    for (const server of servers) await server.close();
  });

  test('spreads the items over every job server', async () => {
    await lastValueFrom(
      client
        .sendBatch(
          'batch.square',
          Array.from({ length: 40 }, (_, n) => n * 10),
        )
        .pipe(toArray()),
    );
    const prefixes = new Set([...workerOf.values()].map((handle) => handle.split(':')[1]));
    expect(prefixes).toEqual(new Set(['a', 'b']));
  });
});
