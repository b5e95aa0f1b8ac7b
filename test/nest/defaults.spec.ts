import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, Subject, timeout, toArray } from 'rxjs';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobExceptionError, GearmanJobTimeoutError } from '../../lib/common/errors.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { GearmanJobTimeout } from '../../lib/nest/gearman-job-timeout.decorator.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { submitFromOutside } from '../client/support/outside-client.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

/** The app's own client, as a handler gets it injected: set per test run. */
let ownClient: ClientGearman;
/** Handlers that never answer, as a hung HTTP call or a forgotten promise would. */
let hung = 0;
/** Per call of `feed`: the stream the test drives. */
const feeds: Subject<unknown>[] = [];
const aborted: unknown[] = [];

@Controller()
class DefaultsController {
  @MessagePattern('echo')
  echo(@Payload() value: unknown) {
    return value;
  }

  @MessagePattern('never')
  never() {
    hung++;
    return new Promise(() => undefined);
  }

  @MessagePattern('outer')
  async outer(@Payload() value: string) {
    // Through Gearman, to a pattern this same app serves.
    return `outer(${await firstValueFrom(ownClient.send<string>('inner', value))})`;
  }

  @MessagePattern('inner')
  inner(@Payload() value: string) {
    return `inner(${value})`;
  }

  @GearmanJobTimeout(150)
  @MessagePattern('stuck')
  stuck(@Ctx() ctx: GearmanContext) {
    ctx.getSignal().addEventListener('abort', () => aborted.push(ctx.getSignal().reason));
    return new Promise(() => undefined);
  }

  @GearmanJobTimeout(100)
  @MessagePattern('gives-up-when-aborted')
  givesUp(@Ctx() ctx: GearmanContext) {
    // A well-behaved handler: stops (and fails) when its job times out.
    return new Promise((_resolve, reject) => ctx.getSignal().addEventListener('abort', () => reject(new Error('aborted'))));
  }

  @MessagePattern('stuck-by-extras', { jobTimeoutMs: 150 })
  stuckByExtras() {
    return new Promise(() => undefined);
  }

  @MessagePattern('feed')
  feed() {
    const feed = new Subject<unknown>();
    feeds.push(feed);
    return feed;
  }

  @MessagePattern('twice-the-same')
  twiceTheSame(@Payload() value: unknown, @Ctx() ctx: GearmanContext) {
    ctx.sendData(value);
    return value;
  }
}

@Module({ controllers: [DefaultsController] })
class DefaultsModule {}

describeOnJobServers('A default-configured app', (kind) => {
  let jobServer: JobServerUnderTest;
  let app: INestMicroservice;
  let client: ClientGearman;
  let plain: GearmanClient;
  const warnings: string[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    hung = 0;
    feeds.length = 0;
    warnings.length = 0;
    errors.length = 0;
    jobServer = await startJobServer(kind);
    // Every setting is the transport's default but stopTimeoutMs, so that the handlers that never
    // answer keep close() waiting one second, not thirty.
    app = await NestFactory.createMicroservice(DefaultsModule, {
      strategy: new ServerGearman({ servers: jobServer.servers, stopTimeoutMs: 1000 }),
      logger: {
        log: () => undefined,
        error: (message: unknown) => errors.push(String(message)),
        warn: (message: unknown) => warnings.push(String(message)),
      },
    });
    await app.listen();
    client = new ClientGearman({ servers: jobServer.servers });
    ownClient = new ClientGearman({ servers: jobServer.servers });
    plain = new GearmanClient({ servers: jobServer.servers });
  });

  afterAll(async () => {
    await client?.close();
    await ownClient?.close();
    await plain?.close();
    await app?.close();
    await jobServer?.stop();
  });

  test('a handler that never answers holds up nothing: other jobs run, from Nest and from plain clients', async () => {
    await expect(firstValueFrom(client.send('never', 1).pipe(timeout(100)))).rejects.toThrow(/Timeout/);
    await expect(firstValueFrom(client.send('never', 2).pipe(timeout(100)))).rejects.toThrow(/Timeout/);
    expect(hung).toBe(2);
    await expect(firstValueFrom(client.send('echo', 'still served'))).resolves.toBe('still served');
    expect((await plain.submitJob('echo', '"from a plain client"').result).toString()).toBe('"from a plain client"');
  });

  test('a handler may call, through Gearman, a pattern its own app serves', async () => {
    await expect(firstValueFrom(client.send('outer', 'x'))).resolves.toBe('outer(inner(x))');
  });

  test('callers from other processes filling every slot with such handlers do not deadlock it', async () => {
    const port = Number(jobServer.servers[0].split(':')[1]);
    const payloads = Array.from({ length: 150 }, (_, i) => `"${i}"`);
    const results = await submitFromOutside(port, 'outer', payloads, 30_000);
    expect(results).toEqual(payloads.map((_, i) => `"outer(inner(${i}))"`));
  });

  test('2,000 requests at concurrency 64', async () => {
    let next = 0;
    const replies: unknown[] = [];
    const caller = async () => {
      while (next < 2000) {
        const value = next++;
        replies[value] = await firstValueFrom(client.send('echo', { value }));
      }
    };
    await Promise.all(Array.from({ length: 64 }, caller));
    expect(replies).toHaveLength(2000);
    expect(replies.every((reply, i) => (reply as { value: number }).value === i)).toBe(true);
  });

  test('a job past its @GearmanJobTimeout ends with GearmanJobTimeoutError for the caller; its signal aborts; a warning is logged', async () => {
    const error = await firstValueFrom(client.send('stuck', 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GearmanJobTimeoutError);
    expect(error).toMatchObject({ code: 'JOB_TIMEOUT', functionName: 'stuck', timeoutMs: 150 });
    expect(aborted.at(-1)).toBeInstanceOf(GearmanJobTimeoutError);
    expect(warnings).toContainEqual(expect.stringMatching(/\(stuck\) timed out after 150 ms/));
    // A plain client gets the WORK_EXCEPTION it travelled as: Nest's error shape with the code.
    const failure = (await plain.submitJob('stuck-by-extras', '1').result.catch((e: unknown) => e)) as GearmanJobExceptionError;
    expect(failure).toBeInstanceOf(GearmanJobExceptionError);
    expect(JSON.parse(failure.data.toString())).toEqual({
      status: 'error',
      code: 'JOB_TIMEOUT',
      message: `Job ${failure.handle} (stuck-by-extras) timed out after 150 ms`,
      timeoutMs: 150,
    });
  });

  test('a handler that stops when its signal aborts: the caller gets the timeout error, its own late failure is not reported as one', async () => {
    const before = errors.length;
    await expect(firstValueFrom(client.send('gives-up-when-aborted', 1))).rejects.toBeInstanceOf(GearmanJobTimeoutError);
    await expect(firstValueFrom(client.send('echo', 'after'))).resolves.toBe('after');
    // Nest's exception filter logs the handler's own error as it logs any; the transport adds nothing.
    expect(errors.slice(before).filter((message) => /after it ended/.test(message))).toEqual([]);
    expect(warnings).toContainEqual(expect.stringMatching(/\(gives-up-when-aborted\) timed out after 100 ms/));
  });

  test('a stream that emits and then waits delivers each value at once; the last is the result for plain clients', async () => {
    const values: unknown[] = [];
    const done = lastValueFrom(client.send('feed', 1).pipe(toArray()));
    client.send('feed', 1); // cold: not subscribed, never sent
    const reply = client.send('feed', 1).subscribe((value) => values.push(value));
    await eventually(() => feeds.length === 2, 'both feeds to start');
    feeds[0].next({ tick: 1 });
    feeds[1].next({ tick: 1 });
    await eventually(() => values.length === 1, 'the first value, while the stream still runs');
    feeds[1].next({ tick: 2 });
    await eventually(() => values.length === 2, 'the second value');
    feeds[1].complete();
    feeds[0].complete();
    await expect(done).resolves.toEqual([{ tick: 1 }]);
    await eventually(() => reply.closed, 'the stream to complete');
    expect(values).toEqual([{ tick: 1 }, { tick: 2 }]);

    const job = plain.submitJob('feed', '1');
    const data: string[] = [];
    job.on('data', (chunk: Buffer) => data.push(chunk.toString()));
    await eventually(() => feeds.length === 3, 'the plain client’s feed');
    feeds[2].next('a');
    await eventually(() => data.length === 1, 'the first WORK_DATA');
    feeds[2].next('b');
    await eventually(() => data.length === 2, 'the second WORK_DATA');
    feeds[2].complete();
    expect((await job.result).toString()).toBe('"b"');
    expect(data).toEqual(['"a"', '"b"']);
  });

  test('the same value sent twice in a row arrives twice', async () => {
    await expect(lastValueFrom(client.send('twice-the-same', 'again').pipe(toArray()))).resolves.toEqual(['again', 'again']);
    await expect(lastValueFrom(client.send('twice-the-same', 0).pipe(toArray()))).resolves.toEqual([0, 0]);
  });
});

describeOnJobServers('Job timeouts', (kind) => {
  let jobServer: JobServerUnderTest;
  const apps: INestMicroservice[] = [];

  beforeEach(async () => {
    jobServer = await startJobServer(kind);
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await jobServer.stop();
  });

  test('jobTimeoutMs applies to every pattern: the caller gets the timeout error, the slot is free, the next job runs', async () => {
    const strategy = new ServerGearman({ servers: jobServer.servers, concurrency: 1, jobTimeoutMs: 200, stopTimeoutMs: 1000 });
    const ended: string[] = [];
    strategy.setOnProcessingEndHook((_transport, context) => ended.push((context as GearmanContext).getFunctionName()));
    const app = await NestFactory.createMicroservice(DefaultsModule, { strategy, logger: false });
    apps.push(app);
    await app.listen();
    const port = Number(jobServer.servers[0].split(':')[1]);
    const client = new ClientGearman({ servers: jobServer.servers });
    try {
      const error = await firstValueFrom(client.send('never', 1)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GearmanJobTimeoutError);
      expect(error).toMatchObject({ functionName: 'never', timeoutMs: 200 });
      // Submitted from outside: with concurrency 1, only a freed slot lets it run.
      await expect(submitFromOutside(port, 'echo', ['"next"'])).resolves.toEqual(['"next"']);
      expect(ended).toEqual(['never', 'echo']);
      // The pattern's own timeout wins over the transport's.
      await expect(firstValueFrom(client.send('stuck', 1))).rejects.toMatchObject({ timeoutMs: 150 });
    } finally {
      await client.close();
    }
  });

  test('a bad timeout is refused', () => {
    expect(() => new ServerGearman({ jobTimeoutMs: -1 })).toThrow(/whole number of ms/);
    expect(() => GearmanJobTimeout(1.5)).toThrow(/whole number of ms/);
  });
});
