import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import type { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import type { WorkerJob } from '../../lib/worker/worker-job.js';
import { describeOnJobServers, startJobServer, type JobServerUnderTest } from './job-servers.js';

/** Which worker ran which job, over every app in this file. */
const runs: { worker: string; id: number }[] = [];

@Controller()
class WorkController {
  @MessagePattern('spread-work')
  async work(@Payload() job: { id: number }, @Ctx() ctx: GearmanContext) {
    const worker = workerByJob.get(ctx.getJob()) ?? 'unknown';
    runs.push({ worker, id: job.id });
    await new Promise((resolve) => setTimeout(resolve, 1));
    return { id: job.id, square: job.id * job.id, worker };
  }

  @MessagePattern('requeued-work')
  finish(@Payload() job: { id: number }) {
    return { id: job.id, finishedBy: 'survivor' };
  }
}

/** The app each job ran in, recorded from the worker's 'job' event. */
const workerByJob = new WeakMap<object, string>();

@Module({ controllers: [WorkController] })
class WorkModule {}

async function startWorkerApp(servers: string[], name: string): Promise<INestMicroservice> {
  const strategy = new ServerGearman({ servers, clientId: name });
  const app = await NestFactory.createMicroservice(WorkModule, { strategy, logger: false });
  await app.listen();
  strategy.unwrap<GearmanWorker>().on('job', (job: WorkerJob) => workerByJob.set(job, name));
  return app;
}

/** Resolves with the first stdout line of `child` that starts with `prefix`. */
function lineFrom(child: ChildProcess, prefix: string, timeoutMs = 10000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    const timer = setTimeout(() => finish(new Error(`no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((candidate) => candidate.startsWith(prefix));
      if (line !== undefined) finish(undefined, line);
    };
    const onErr = (chunk: Buffer) => (stderr += chunk.toString());
    const onExit = () => finish(new Error(`the child exited before printing "${prefix}"; stderr: ${stderr}`));
    function finish(error?: Error, line?: string) {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onErr);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(line!);
    }
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onErr);
    child.once('exit', onExit);
  });
}

describeOnJobServers('Several Nest workers', (kind) => {
  let jobServer: JobServerUnderTest;
  let client: ClientGearman;
  const apps: INestMicroservice[] = [];
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    jobServer = await startJobServer(kind);
    client = new ClientGearman({ servers: jobServer.servers });
    runs.length = 0;
  });

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    child = undefined;
    await client.close();
    for (const app of apps.splice(0)) await app.close();
    await jobServer.stop();
  });

  test('two workers share many jobs: every job runs exactly once and both do work', async () => {
    apps.push(await startWorkerApp(jobServer.servers, 'worker-a'), await startWorkerApp(jobServer.servers, 'worker-b'));
    const ids = Array.from({ length: 300 }, (_, i) => i);
    const replies = await Promise.all(ids.map((id) => firstValueFrom(client.send('spread-work', { id }))));
    expect(replies.map((reply) => reply.square)).toEqual(ids.map((id) => id * id));
    expect(runs.map((run) => run.id).sort((a, b) => a - b)).toEqual(ids);
    const perWorker = new Map<string, number>();
    for (const run of runs) perWorker.set(run.worker, (perWorker.get(run.worker) ?? 0) + 1);
    expect([...perWorker.keys()].sort()).toEqual(['worker-a', 'worker-b']);
  });

  test('a worker killed in the middle of a job: the job is requeued and finished by the other', async () => {
    const script = join(process.cwd(), 'test', 'nest', 'fixtures', 'hanging-nest-worker.cjs');
    if (!existsSync(join(process.cwd(), 'dist', 'cjs', 'index.js'))) throw new Error('dist/cjs is missing: run `npm run build` first');
    child = spawn(process.execPath, [script, jobServer.servers[0], 'requeued-work'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await lineFrom(child, 'ready');
    const reply = firstValueFrom(client.send('requeued-work', { id: 7 }));
    expect(await lineFrom(child, 'started')).toBe('started {"id":7}');
    apps.push(await startWorkerApp(jobServer.servers, 'survivor'));
    child.kill('SIGKILL');
    await expect(reply).resolves.toEqual({ id: 7, finishedBy: 'survivor' });
  });
});
