import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { GearmanRecordBuilder } from '../../lib/nest/gearman-record-builder.js';
import { GearmanRetry } from '../../lib/nest/gearman-retry.decorator.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { adminCommand } from '../client/support/admin.js';
import { describeWithPeers, startGearmand } from '../support/gearmand.js';
import { requireBuild, startCliServer } from '../support/processes.js';
import { tempQueueDir } from '../support/queue-files.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

interface Run {
  data: unknown;
  attempt: number;
  unique: string;
  handle: string;
  origin: { unique: string; handle: string };
}
const runs: Run[] = [];
/** The handler of `flaky` throws until this attempt. */
let succeedAt = Infinity;
const record = (data: unknown, ctx: GearmanContext) =>
  runs.push({ data, attempt: ctx.getAttempt(), unique: ctx.getUnique(), handle: ctx.getHandle(), origin: ctx.getOrigin() });

@Controller()
class RetryController {
  @EventPattern<string>('retry.flaky')
  flaky(@Payload() data: unknown, @Ctx() ctx: GearmanContext) {
    record(data, ctx);
    if (ctx.getAttempt() < succeedAt) throw new Error(`attempt ${ctx.getAttempt()} failed`);
  }

  @EventPattern<string>('retry.pattern', { retry: { attempts: 2 } })
  pattern(@Payload() data: unknown, @Ctx() ctx: GearmanContext) {
    record(data, ctx);
    throw new Error('always fails');
  }

  @GearmanRetry({ attempts: 3 })
  @EventPattern<string>('retry.decorated')
  decorated(@Payload() data: unknown, @Ctx() ctx: GearmanContext) {
    record(data, ctx);
    throw new Error('always fails');
  }
}

@Module({ controllers: [RetryController] })
class RetryModule {}

@Controller()
class BadRetryController {
  @MessagePattern('retry.request', { retry: { attempts: 2 } })
  request() {
    return 'never served';
  }
}
@Module({ controllers: [BadRetryController] })
class BadRetryModule {}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/** Jobs of `fn` the server holds (admin `status`: queued and running). */
async function jobsHeld(servers: string[], fn: string): Promise<number> {
  const port = Number(servers[0].split(':')[1]);
  const line = (await adminCommand(port, 'status')).find((row) => row.split('\t')[0] === fn);
  return line ? Number(line.split('\t')[1]) : 0;
}

describeOnJobServers('Retries of failed background jobs', (kind) => {
  let jobServer: JobServerUnderTest;
  let client: ClientGearman;
  let app: INestMicroservice | undefined;

  beforeEach(async () => {
    jobServer = await startJobServer(kind);
    client = new ClientGearman({ servers: jobServer.servers, logger: quiet });
    runs.length = 0;
    succeedAt = Infinity;
    const strategy = new ServerGearman({ servers: jobServer.servers, logger: quiet });
    app = await NestFactory.createMicroservice(RetryModule, { strategy, logger: false });
    await app.listen();
  });

  afterEach(async () => {
    await client.close();
    await app?.close();
    await jobServer.stop();
  });

  test('per call: a handler that throws runs again until it succeeds; the attempt number and the first job are visible', async () => {
    succeedAt = 3;
    const handle = await lastValueFrom(client.emit('retry.flaky', new GearmanRecordBuilder({ n: 1 }).setRetry({ attempts: 5 }).build()));
    await eventually(() => runs.length === 3, 'three attempts');
    await eventually(async () => (await jobsHeld(jobServer.servers, 'retry.flaky')) === 0, 'no job left');
    expect(runs.map((run) => run.attempt)).toEqual([1, 2, 3]);
    expect(runs.map((run) => run.data)).toEqual([{ n: 1 }, { n: 1 }, { n: 1 }]);
    const first = runs[0];
    expect(first.handle).toBe(handle);
    expect(runs.map((run) => run.unique)).toEqual([first.unique, `${first.unique}#2`, `${first.unique}#3`]);
    for (const run of runs) expect(run.origin).toEqual({ unique: first.unique, handle });
  });

  test('per call: out of attempts, the job ends failed after exactly that many runs', async () => {
    await lastValueFrom(client.emit('retry.flaky', new GearmanRecordBuilder('x').setRetry({ attempts: 2 }).build()));
    await eventually(() => runs.length === 2, 'two attempts');
    await eventually(async () => (await jobsHeld(jobServer.servers, 'retry.flaky')) === 0, 'no job left');
    // A later event runs as its own first attempt: nothing of the first job was still pending before it.
    await lastValueFrom(client.emit('retry.flaky', 'after'));
    await eventually(() => runs.length === 3, 'the later event');
    expect(runs.map((run) => [run.data, run.attempt])).toEqual([
      ['x', 1],
      ['x', 2],
      ['after', 1],
    ]);
  });

  test('per pattern: @EventPattern extras retry a plain Gearman client’s job, whose payload reaches every attempt untouched', async () => {
    const plain = new GearmanClient({ servers: jobServer.servers, logger: quiet });
    try {
      await plain.submitBackgroundJob('retry.pattern', 'plain bytes');
    } finally {
      await plain.close();
    }
    await eventually(() => runs.length === 2, 'two attempts');
    await eventually(async () => (await jobsHeld(jobServer.servers, 'retry.pattern')) === 0, 'no job left');
    expect(runs.map((run) => [run.data, run.attempt])).toEqual([
      ['plain bytes', 1],
      ['plain bytes', 2],
    ]);
  });

  test('per pattern with @GearmanRetry: the same as the extras', async () => {
    await lastValueFrom(client.emit('retry.decorated', 'decorated'));
    await eventually(() => runs.length === 3, 'three attempts');
    await eventually(async () => (await jobsHeld(jobServer.servers, 'retry.decorated')) === 0, 'no job left');
    expect(runs.map((run) => [run.data, run.attempt])).toEqual([
      ['decorated', 1],
      ['decorated', 2],
      ['decorated', 3],
    ]);
    expect(() => GearmanRetry({ attempts: 0 })).toThrow('GearmanRetry(): retry attempts must be a whole number from 1 to 1000, got 0');
  });

  test('a back-off makes the retry an epoch job, which runs when due (on gearmand 1.1 too: the worker that queued it asks for it then)', async () => {
    succeedAt = 2;
    await lastValueFrom(
      client.emit(
        'retry.flaky',
        new GearmanRecordBuilder('later').setRetry({ attempts: 2, backoff: { type: 'fixed', delayMs: 500, jitter: 0.5 } }).build(),
      ),
    );
    await eventually(() => runs.length === 2, 'the delayed attempt', 15_000);
    expect(runs.map((run) => run.attempt)).toEqual([1, 2]);
  });

  test('retry on send() (a foreground job) is refused before anything is sent', async () => {
    await expect(
      lastValueFrom(client.send('retry.flaky', new GearmanRecordBuilder('x').setRetry({ attempts: 2 }).build())),
    ).rejects.toThrow('retry is for background jobs');
    expect(runs).toEqual([]);
  });
});

test('retry in @MessagePattern extras stops listen() with a clear error', async () => {
  const jobServer = await startJobServer('GearmanJobServer');
  const strategy = new ServerGearman({ servers: jobServer.servers, logger: quiet });
  const bad = await NestFactory.createMicroservice(BadRetryModule, { strategy, logger: false });
  try {
    await expect(bad.listen()).rejects.toThrow('Pattern retry.request: retry is for @EventPattern handlers');
  } finally {
    await bad.close();
    await jobServer.stop();
  }
});

interface KillableServer {
  readonly port: number;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
}

/** A pending retry survives a crash of a job server with a persistent queue: gearmand's, and ours. */
function retrySurvivesCrash(title: string, startServer: (file: string) => Promise<KillableServer>): void {
  const files = tempQueueDir();
  afterAll(() => files.remove());

  test(`${title}: a pending retry survives a SIGKILL; the restarted server runs attempt 2 under the first job’s name`, async () => {
    runs.length = 0;
    succeedAt = 2;
    const file = files.file('retries.db');
    let server = await startServer(file);
    const servers = [`127.0.0.1:${server.port}`];
    const client = new ClientGearman({ servers, logger: quiet });
    let app = await NestFactory.createMicroservice(RetryModule, { strategy: new ServerGearman({ servers, logger: quiet }), logger: false });
    try {
      await app.listen();
      const record = new GearmanRecordBuilder('keep me').setRetry({ attempts: 3, backoff: { type: 'fixed', delayMs: 1000 } }).build();
      const handle = await lastValueFrom(client.emit('retry.flaky', record));
      await eventually(() => runs.length === 1, 'the first attempt');
      // The first attempt is over and only the queued retry is left.
      await eventually(async () => (await adminCommand(server.port, 'status')).includes('retry.flaky\t1\t0\t1'), 'the queued retry');
      // Our sqlite queue commits the first attempt's delete with others within 20 ms (a kill before
      // that runs it again: at least once); past that, the file holds only the pending retry.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await app.close();
      await client.close();
      await server.kill();

      server = await startServer(file);
      // Due by now (its wait was one second), so the new worker's first grab finds it.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const restarted = [`127.0.0.1:${server.port}`];
      app = await NestFactory.createMicroservice(RetryModule, {
        strategy: new ServerGearman({ servers: restarted, logger: quiet }),
        logger: false,
      });
      await app.listen();
      await eventually(() => runs.length === 2, 'attempt 2 after the restart', 15_000);
      expect(runs.map((run) => [run.data, run.attempt])).toEqual([
        ['keep me', 1],
        ['keep me', 2],
      ]);
      expect(runs[1].origin).toEqual({ unique: runs[0].unique, handle });
      expect(runs[1].unique).toBe(`${runs[0].unique}#2`);
    } finally {
      await app.close();
      await client.close();
      await server.kill();
    }
  }, 60_000);
}

describeWithPeers(['gearmand'], 'Retries on gearmand -q libsqlite3', () => {
  retrySurvivesCrash('gearmand', async (file) => {
    const gearmand = await startGearmand(['-q', 'libsqlite3', `--libsqlite3-db=${file}`]);
    return {
      port: gearmand.port,
      async kill() {
        if (gearmand.process.exitCode === null && gearmand.process.signalCode === null) gearmand.process.kill('SIGKILL');
        await gearmand.stop();
      },
    };
  });
});

describe('Retries on the standalone server with the sqlite queue', () => {
  beforeAll(() => requireBuild());
  retrySurvivesCrash('nestjs-gearman server', (file) => startCliServer(['-q', 'libsqlite3', '--libsqlite3-db', file]));
});
