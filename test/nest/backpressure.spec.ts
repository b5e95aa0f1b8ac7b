import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { type GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanQueueFullError } from '../../lib/common/errors.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { SlowReaderProxy } from '../client/support/slow-reader-proxy.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

const received: number[] = [];

@Controller()
class BulkController {
  @EventPattern('bulk.note')
  note(@Payload() note: { index: number }) {
    received.push(note.index);
  }

  @MessagePattern('bulk.echo')
  echo(@Payload() value: unknown) {
    return value;
  }
}

@Module({ controllers: [BulkController] })
class BulkModule {}

/** A message of about 256 KiB once encoded. */
const note = (index: number) => ({ index, text: 'x'.repeat(256 * 1024) });
const settled = <T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> =>
  promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describeOnJobServers('ClientGearman backpressure', (kind) => {
  let jobServer: JobServerUnderTest;
  let proxy: SlowReaderProxy;
  let app: INestMicroservice;
  let client: ClientGearman;

  beforeEach(async () => {
    received.length = 0;
    jobServer = await startJobServer(kind);
    proxy = await SlowReaderProxy.start(Number(jobServer.servers[0].split(':')[1]));
    app = await NestFactory.createMicroservice(BulkModule, {
      strategy: new ServerGearman({ servers: jobServer.servers, concurrency: 8 }),
      logger: false,
    });
    await app.listen();
    // Room for two held messages.
    client = new ClientGearman({ servers: [proxy.address], maxQueuedBytes: 2 * (256 * 1024 + 1024) });
    await client.connect();
  });

  afterEach(async () => {
    await client.close();
    await app.close();
    await proxy.close();
    await jobServer.stop();
  });

  test('while the job server does not read, emits wait in order up to maxQueuedBytes, the next one is refused, and all accepted ones arrive', async () => {
    const gearman = client.unwrap<GearmanClient>();
    proxy.stopReading();
    const emits: Promise<{ value?: unknown; error?: unknown }>[] = [];
    while (!gearman.needsDrain) {
      if (emits.length >= 400) throw new Error('the connection never backed up');
      emits.push(settled(lastValueFrom(client.emit('bulk.note', note(emits.length)))));
      await nextTurn();
    }
    let refused: unknown;
    for (let i = 0; i < 10 && refused === undefined; i++) {
      const outcome = settled(lastValueFrom(client.emit('bulk.note', note(emits.length))));
      await nextTurn();
      const early = await Promise.race([outcome, nextTurn().then(() => undefined)]);
      if (early && 'error' in early) refused = early.error;
      else emits.push(outcome);
    }
    expect(refused).toBeInstanceOf(GearmanQueueFullError);
    const sendRefused = await settled(lastValueFrom(client.send('bulk.echo', note(-1))));
    expect(sendRefused.error).toBeInstanceOf(GearmanQueueFullError);

    proxy.readAgain();
    const outcomes = await Promise.all(emits);
    expect(outcomes.filter((outcome) => 'error' in outcome)).toEqual([]);
    await eventually(() => received.length === emits.length, 'every accepted event to run');
    expect(new Set(received).size).toBe(emits.length);
    await expect(lastValueFrom(client.send('bulk.echo', { after: true }))).resolves.toEqual({ after: true });
  });
});
