import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { GearmanJobUnknownError } from '../../lib/common/errors.js';
import type { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { GearmanRecordBuilder } from '../../lib/nest/gearman-record-builder.js';
import { GEARMAN_JOB_SERVER } from '../../lib/nest/module/gearman.constants.js';
import { GearmanModule } from '../../lib/nest/module/gearman.module.js';
import { waitUntil } from '../support/processes.js';

let gate: Promise<void> = Promise.resolve();

@Controller()
class ThumbnailController {
  @MessagePattern('results.thumbnail')
  async thumbnail(@Payload() image: { id: number }, @Ctx() ctx: GearmanContext) {
    ctx.sendStatus(1, 2);
    ctx.sendData({ step: 'decoded' });
    await gate;
    if (image.id < 0) throw new RpcException({ code: 'NEGATIVE', id: image.id });
    return { id: image.id, width: 128 };
  }

  @MessagePattern('results.widths')
  widths(@Payload() outcomes: { index: number; value?: { width: number } }[]) {
    return outcomes.reduce((total, outcome) => total + (outcome.value?.width ?? 0), 0);
  }

  /** A worker that splits its own job into a background batch: its result is the batch's handle. */
  @MessagePattern('results.album')
  album(@Payload() ids: number[], @Ctx() ctx: GearmanContext) {
    return ctx.emitBatch(
      'results.thumbnail',
      ids.map((id) => ({ id })),
      { gather: 'results.widths' },
    );
  }
}

/**
 * Results later and background batches on the embedded job server, through GearmanModule as an
 * app wires them: the module's ClientGearman, and a microservice whose handlers split jobs with it.
 */
describe('ClientGearman results and batches on the embedded job server', () => {
  let app: INestMicroservice;
  let client: ClientGearman;

  beforeAll(async () => {
    @Module({ imports: [GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } })], controllers: [ThumbnailController] })
    class AppModule {}
    app = await NestFactory.createMicroservice(AppModule, { ...GearmanModule.microservice({ concurrency: 8 }), logger: false });
    await app.listen();
    client = app.get(ClientGearman);
    expect(app.get<GearmanJobServer>(GEARMAN_JOB_SERVER)).not.toBeNull();
  });
  afterAll(async () => {
    gate = Promise.resolve();
    await app?.close();
  });

  test('emit(), then getResult() / waitForResult() by the handle: running with progress, then the decoded value', async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const handle = await firstValueFrom(client.emit<string>('results.thumbnail', { id: 1 }));
    await waitUntil(async () => (await client.getResult(handle)).state === 'running', 'the job to run', 5000);
    expect(await client.getResult(handle)).toMatchObject({ state: 'running', progress: { numerator: 1, denominator: 2 } });
    open();
    expect(await client.waitForResult(handle, { timeoutMs: 5000 })).toMatchObject({
      state: 'completed',
      value: { id: 1, width: 128 },
      data: [{ step: 'decoded' }],
    });
  });

  test('a failed job holds the error send() reports; an unknown id followed errors with GearmanJobUnknownError', async () => {
    const sent = await lastValueFrom(client.send('results.thumbnail', { id: -1 })).catch((error: unknown) => error);
    const handle = await firstValueFrom(client.emit<string>('results.thumbnail', { id: -1 }));
    const state = await client.waitForResult(handle, { timeoutMs: 5000 });
    expect(state).toMatchObject({ state: 'failed', error: { code: 'NEGATIVE', id: -1 } });
    expect(state.state === 'failed' && state.error).toEqual(sent);
    await expect(lastValueFrom(client.followResult('H:nowhere:1'))).rejects.toBeInstanceOf(GearmanJobUnknownError);
  });

  test('follow() of a background record: created with its handle, the job as it runs, then its result', async () => {
    const record = new GearmanRecordBuilder({ id: 2 }).setBackground().build();
    const events = await lastValueFrom(client.follow('results.thumbnail', record).pipe(toArray()));
    expect(events[0]).toEqual({ type: 'created', handle: expect.stringMatching(/^H:/) });
    expect(events[events.length - 1]).toEqual({ type: 'result', value: { id: 2, width: 128 } });
    expect(events).toContainEqual({ type: 'data', value: { step: 'decoded' } });
  });

  test('emitBatch() with a gather step, and a handler that splits its job with ctx.emitBatch()', async () => {
    const handle = await client.emitBatch(
      'results.thumbnail',
      [1, 2, 3].map((id) => ({ id })),
      { gather: 'results.widths' },
    );
    expect(await client.waitForResult(handle, { timeoutMs: 5000 })).toMatchObject({
      state: 'completed',
      value: 384,
      batch: { total: 3, ended: 3, failed: 0 },
    });
    const batchHandle = await lastValueFrom(client.send<string>('results.album', [4, 5]));
    expect(batchHandle).toMatch(/^H:.+:[0-9a-z]+-[0-9a-f]{16}$/);
    expect(await client.waitForResult(batchHandle, { timeoutMs: 5000 })).toMatchObject({ state: 'completed', value: 256 });
  });
});
