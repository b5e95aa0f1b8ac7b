import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { run } from '../client/support/peers.js';
import { describeWithPeers, hasPerlGearman } from '../support/gearmand.js';
import { startCliServer, waitUntil, type RunningCliServer } from '../support/processes.js';
import { adminQuery } from './support/raw-peer.js';

let release: () => void = () => undefined;

@Controller()
class ImageController {
  @MessagePattern('interop.resize')
  async resize(@Payload() image: { id: number; hold?: boolean }, @Ctx() ctx: GearmanContext) {
    ctx.sendStatus(1, 2);
    ctx.sendData({ step: 'decoded' });
    if (image.hold) await new Promise<void>((resolve) => (release = resolve));
    return { id: image.id, width: 128 };
  }

  @MessagePattern('interop.refuse')
  refuse(@Payload() image: { id: number }) {
    throw new RpcException({ code: 'TOO_BIG', id: image.id });
  }
}

@Module({ controllers: [ImageController] })
class ImageModule {}

const php = (port: number, code: string) => run('php', ['-r', `$c = new GearmanClient(); $c->addServer('127.0.0.1', ${port}); ${code}`]);
const perlFetch = (port: number, id: string) =>
  run('perl', [
    '-e',
    `use Gearman::Client; my $c = Gearman::Client->new(job_servers => ['127.0.0.1:${port}']);
     my $r = $c->do_task('gearman.result' => '${id}', { timeout => 10 }); print defined $r ? $$r : "failed"`,
  ]);
const cli = (port: number, ...args: string[]) => run('gearman', ['-h', '127.0.0.1', '-p', String(port), ...args]);

/**
 * Results later on `nestjs-gearman server`: a background job submitted by a process that has left,
 * fetched by a Nest client, PHP, Perl and the gearman CLI, with `gearman.result`, and seen by the
 * admin `show job`.
 */
describeWithPeers(['gearman', 'php'], 'results on the standalone job server, from every language', () => {
  let server: RunningCliServer;
  let app: INestMicroservice;
  let client: ClientGearman;

  beforeAll(async () => {
    server = await startCliServer(['--result-max-age', '3']);
    const servers = [`127.0.0.1:${server.port}`];
    app = await NestFactory.createMicroservice(ImageModule, { strategy: new ServerGearman({ servers, concurrency: 4 }), logger: false });
    await app.listen();
    client = new ClientGearman({ servers });
  });
  afterAll(async () => {
    release();
    await client?.close();
    await app?.close();
    await server?.kill();
  });

  test('a job submitted by a PHP process that has exited: its result from Nest, PHP, Perl, the CLI and show job', async () => {
    const submitted = await php(server.port, `echo $c->doBackground('interop.resize', '{"id":7}', 'img-7');`);
    expect(submitted.code).toBe(0);
    const handle = submitted.stdout;
    const state = await client.waitForResult(handle, { timeoutMs: 10_000 });
    expect(state).toMatchObject({
      state: 'completed',
      handle,
      unique: 'img-7',
      value: { id: 7, width: 128 },
      data: [{ step: 'decoded' }],
      progress: { numerator: 1, denominator: 2 },
    });
    expect(await client.getResult('img-7')).toEqual(state);
    // PHP's doNormal returns the job's WORK_DATA and its result together, as it does for any job.
    const fromPhp = await php(server.port, `echo $c->doNormal('gearman.result', '${handle}');`);
    expect(fromPhp.stdout).toBe('{"step":"decoded"}{"id":7,"width":128}');
    if (hasPerlGearman()) expect((await perlFetch(server.port, handle)).stdout).toBe('{"id":7,"width":128}');
    const fromCli = await cli(server.port, '-f', 'gearman.result', handle);
    expect(fromCli).toMatchObject({ code: 0, stdout: '{"step":"decoded"}{"id":7,"width":128}' });
    expect(await cli(server.port, '-f', 'gearman.result.nowait', 'img-7')).toMatchObject({ code: 0, stdout: fromCli.stdout });
    const shown = await adminQuery(server.port, `show job ${handle}`, true);
    expect(shown).toContain('state\tcompleted\n');
    expect(shown).toContain('result_bytes\t20\n');
    expect(shown).not.toContain('width');
  });

  test('a failed job fails the fetch as it failed; an unknown or still running one says why', async () => {
    const handle = (await cli(server.port, '-v', '-b', '-f', 'interop.refuse', '{"id":9}')).stdout.match(/Task created: (\S+)/)![1];
    const state = await client.waitForResult(handle, { timeoutMs: 10_000 });
    const sent = await lastValueFrom(client.send('interop.refuse', { id: 9 })).catch((error: unknown) => error);
    expect(state).toMatchObject({ state: 'failed', error: sent });
    expect(await cli(server.port, '-f', 'gearman.result', handle)).toMatchObject({ code: 1, stderr: 'Job failed\n' });
    const phpFailed = await php(
      server.port,
      `$c->doNormal('gearman.result', '${handle}'); echo $c->returnCode() == GEARMAN_WORK_EXCEPTION ? 'exception' : 'other';`,
    );
    expect(phpFailed.stdout).toBe('exception');
    if (hasPerlGearman()) expect((await perlFetch(server.port, handle)).stdout).toBe('failed');

    const unknown = await cli(server.port, '-f', 'gearman.result', 'H:nowhere:1');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^UNKNOWN H:nowhere:1: .*\nJob failed\n$/);
    expect(await client.getResult('H:nowhere:1')).toEqual({ state: 'unknown', id: 'H:nowhere:1', reason: 'not-found' });

    const held = (await cli(server.port, '-v', '-b', '-f', 'interop.resize', '{"id":1,"hold":true}')).stdout.match(
      /Task created: (\S+)/,
    )![1];
    await waitUntil(async () => (await client.getResult(held)).state === 'running', 'the job to run');
    expect((await cli(server.port, '-f', 'gearman.result.nowait', held)).stderr).toBe(`RUNNING ${held}: still running (1/2)\nJob failed\n`);
    release();
    expect(await client.waitForResult(held, { timeoutMs: 10_000 })).toMatchObject({ state: 'completed' });
  });

  test('after its retention (--result-max-age 3) a result is gone, and reads as expired', async () => {
    const handle = await lastValueFrom(client.emit<string>('interop.resize', { id: 3 }));
    expect(await client.waitForResult(handle, { timeoutMs: 10_000 })).toMatchObject({ state: 'completed' });
    await waitUntil(async () => (await client.getResult(handle)).state === 'unknown', 'the result to expire', 10_000);
    expect(await client.getResult(handle)).toEqual({ state: 'unknown', id: handle, reason: 'expired' });
    expect((await cli(server.port, '-f', 'gearman.result', handle)).stderr).toMatch(new RegExp(`^EXPIRED ${handle}: `));
  });
});
