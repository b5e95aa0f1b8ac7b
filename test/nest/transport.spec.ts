import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import fc from 'fast-check';
import { firstValueFrom, from, lastValueFrom, toArray } from 'rxjs';
import { delay, timeout } from 'rxjs/operators';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

const seenEvents: unknown[] = [];

@Controller()
class MathController {
  @MessagePattern('sum')
  sum(@Payload() numbers: number[]) {
    return numbers.reduce((a, b) => a + b, 0);
  }

  @MessagePattern({ cmd: 'echo', version: 2 })
  echo(@Payload() payload: { value: unknown }) {
    return payload.value;
  }

  @MessagePattern('nothing')
  nothing(): void {}

  @MessagePattern('count')
  count(@Payload() n: number) {
    return from(Array.from({ length: n }, (_, i) => i + 1)).pipe(delay(1));
  }

  @MessagePattern('whoami')
  whoami(@Payload() _data: unknown, @Ctx() ctx: GearmanContext) {
    ctx.sendStatus(1, 2);
    ctx.sendData('partial');
    return { functionName: ctx.getFunctionName(), handle: ctx.getHandle(), unique: ctx.getUnique() };
  }

  @MessagePattern('rpc-error')
  rpcError() {
    throw new RpcException({ code: 42, reason: 'nope' });
  }

  @MessagePattern('crash')
  crash() {
    throw new Error('secret detail');
  }

  @EventPattern('audit')
  audit(@Payload() entry: unknown) {
    seenEvents.push(entry);
  }
}

@Module({ controllers: [MathController] })
class AppModule {}

describeOnJobServers('ServerGearman and ClientGearman', (kind) => {
  let jobServer: JobServerUnderTest;
  let app: INestMicroservice;
  let client: ClientGearman;

  beforeAll(async () => {
    jobServer = await startJobServer(kind);
    app = await NestFactory.createMicroservice(AppModule, {
      strategy: new ServerGearman({ servers: jobServer.servers, concurrency: 4 }),
      logger: false,
    });
    await app.listen();
    client = new ClientGearman({ servers: jobServer.servers });
  });

  afterAll(async () => {
    await client?.close();
    await app?.close();
    await jobServer?.stop();
  });

  test('a string pattern is a function; the handler result is the reply', async () => {
    await expect(firstValueFrom(client.send('sum', [1, 2, 3]))).resolves.toBe(6);
  });

  test('JSON values round-trip exactly, both ways, through an object pattern', async () => {
    for (const value of ['42', 42, null, true, '', 'null', '{"a":1}', { a: [1, '2', null] }, [], 'héllo ✓', -1.5e300]) {
      await expect(lastValueFrom(client.send({ version: 2, cmd: 'echo' }, { value }))).resolves.toEqual(value);
    }
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const reply = await lastValueFrom(client.send({ cmd: 'echo', version: 2 }, { value }));
        expect(reply).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 50 },
    );
  });

  test('a 1 MiB payload goes there and back', async () => {
    const big = 'é'.repeat(512 * 1024);
    await expect(lastValueFrom(client.send({ cmd: 'echo', version: 2 }, { value: big }))).resolves.toBe(big);
  });

  test('an undefined result arrives as undefined', async () => {
    await expect(lastValueFrom(client.send('nothing', {}).pipe(toArray()))).resolves.toEqual([undefined]);
  });

  test('an Observable result streams every value, the last one ending the job', async () => {
    await expect(lastValueFrom(client.send('count', 4).pipe(toArray()))).resolves.toEqual([1, 2, 3, 4]);
  });

  test('the context exposes the job; data sent from it arrives as a value', async () => {
    const values = await lastValueFrom(client.send('whoami', 1).pipe(toArray()));
    expect(values[0]).toBe('partial');
    expect(values[1]).toMatchObject({ functionName: 'whoami', unique: '' });
    expect(values[1].handle).toMatch(/^H:/);
  });

  test('an RpcException reaches the client as its error', async () => {
    await expect(firstValueFrom(client.send('rpc-error', 1))).rejects.toEqual({ code: 42, reason: 'nope' });
  });

  test('any other error reaches the client as Internal server error', async () => {
    await expect(firstValueFrom(client.send('crash', 1))).rejects.toEqual({ status: 'error', message: 'Internal server error' });
  });

  test('emit submits a background job that the event handler runs', async () => {
    const handle = await lastValueFrom(client.emit('audit', { who: 'ann' }));
    expect(handle).toMatch(/^H:/);
    await eventually(() => seenEvents.some((e) => (e as { who?: string }).who === 'ann'), 'the event');
  });

  test('timeout() releases the routing entry', async () => {
    await expect(firstValueFrom(client.send('nobody-serves-this', 1).pipe(timeout(100)))).rejects.toThrow(/Timeout/);
    expect((client as unknown as { routingMap: Map<string, unknown> }).routingMap.size).toBe(0);
  });
});
