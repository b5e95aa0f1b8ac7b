import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload, Transport, type Serializer, type Deserializer } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, NEVER, timeout, toArray } from 'rxjs';
import { GearmanClient, GearmanJobExceptionError, GearmanJobServer } from '../../lib/index.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanRecordBuilder } from '../../lib/nest/gearman-record-builder.js';
import { GEARMAN_TRANSPORT, GearmanStatus } from '../../lib/nest/gearman-status.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { submitFromOutside } from '../client/support/outside-client.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

/** Lets a test hold a handler until it says so. */
class Gate {
  private waiting: (() => void)[] = [];
  open = false;
  pass(): Promise<void> {
    return this.open ? Promise.resolve() : new Promise((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    this.open = true;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

const log = { ran: [] as string[], inFlight: 0, maxInFlight: 0, slowRuns: 0, events: [] as unknown[] };
let gate = new Gate();

@Controller()
class OptionsController {
  @EventPattern('ordered')
  ordered(@Payload() name: string) {
    log.ran.push(name);
  }

  @MessagePattern('slow')
  async slow(@Payload() value: unknown) {
    log.slowRuns++;
    log.inFlight++;
    log.maxInFlight = Math.max(log.maxInFlight, log.inFlight);
    await gate.pass();
    log.inFlight--;
    return value;
  }

  @MessagePattern('endless')
  endless() {
    return NEVER;
  }

  @MessagePattern('shout')
  shout(@Payload() text: unknown) {
    return Buffer.from(`${typeof text}:${String(text).toUpperCase()}`);
  }

  @MessagePattern('progress')
  progress(@Payload() _: unknown, @Ctx() ctx: GearmanContext) {
    ctx.sendStatus(1, 4);
    ctx.sendWarning('careful');
    return 'done';
  }

  @MessagePattern('tcp-only', Transport.TCP)
  tcpOnly() {
    return 'not served over Gearman';
  }

  @MessagePattern('gearman-only', GEARMAN_TRANSPORT)
  gearmanOnly() {
    return 'served';
  }

  @EventPattern('event-ok')
  eventOk(@Payload() value: unknown) {
    log.events.push(value);
  }

  @EventPattern('event-throws')
  eventThrows(@Payload() _entry: unknown): void {
    throw new Error('event failed');
  }
}

@Module({ controllers: [OptionsController] })
class OptionsModule {}

async function startApp(servers: string[], extra: Partial<ConstructorParameters<typeof ServerGearman>[0]> = {}) {
  const strategy = new ServerGearman({ servers, ...extra });
  const app = await NestFactory.createMicroservice(OptionsModule, { strategy, logger: false });
  return { app, strategy };
}

describeOnJobServers('Gearman transport options', (kind) => {
  let jobServer: JobServerUnderTest;
  let client: ClientGearman;
  let raw: GearmanClient;
  const apps: INestMicroservice[] = [];

  beforeEach(async () => {
    jobServer = await startJobServer(kind);
    client = new ClientGearman({ servers: jobServer.servers });
    raw = new GearmanClient({ servers: jobServer.servers });
    log.ran = [];
    log.inFlight = log.maxInFlight = log.slowRuns = 0;
    log.events = [];
    gate = new Gate();
  });

  afterEach(async () => {
    gate.release();
    await client.close();
    await raw.close();
    for (const app of apps.splice(0)) await app.close();
    await jobServer.stop();
  });

  async function listen(extra: Partial<ConstructorParameters<typeof ServerGearman>[0]> = {}) {
    const started = await startApp(jobServer.servers, extra);
    apps.push(started.app);
    await started.app.listen();
    return started;
  }

  test('GearmanRecordBuilder priorities: high jobs run before normal, normal before low', async () => {
    const submit = (name: string, priority: 'high' | 'normal' | 'low') =>
      lastValueFrom(client.emit('ordered', new GearmanRecordBuilder(name).setPriority(priority).build()));
    for (const [name, priority] of [
      ['low-1', 'low'],
      ['normal-1', 'normal'],
      ['high-1', 'high'],
      ['low-2', 'low'],
      ['high-2', 'high'],
    ] as const) {
      await submit(name, priority);
    }
    await listen();
    await eventually(() => log.ran.length === 5, 'five queued events');
    expect(log.ran).toEqual(['high-1', 'high-2', 'normal-1', 'low-1', 'low-2']);
  });

  test('GearmanRecordBuilder unique: sends with the same unique id coalesce into one run', async () => {
    await listen();
    const record = () => new GearmanRecordBuilder({ n: 1 }).setUnique('same-job').build();
    const first = firstValueFrom(client.send('slow', record()));
    await eventually(() => log.slowRuns === 1, 'the first run');
    const second = firstValueFrom(client.send('slow', record()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    gate.release();
    await expect(Promise.all([first, second])).resolves.toEqual([{ n: 1 }, { n: 1 }]);
    expect(log.slowRuns).toBe(1);
  });

  test('send() with setBackground() or runAt replies with the job handle; the job still runs', async () => {
    await listen();
    const handle = await lastValueFrom(client.send('ordered', new GearmanRecordBuilder('bg').setBackground().build()));
    expect(handle).toMatch(/^H:/);
    const runAt = Math.floor(Date.now() / 1000) - 1;
    const epochHandle = await lastValueFrom(client.send('ordered', new GearmanRecordBuilder('at').setRunAt(runAt).build()));
    expect(epochHandle).toMatch(/^H:/);
    // gearmand 1.1 looks at due epoch jobs only when another job arrives: give it one.
    await lastValueFrom(client.emit('ordered', 'nudge'));
    await eventually(() => ['bg', 'at'].every((name) => log.ran.includes(name)), 'the background and epoch jobs');
  });

  test('concurrency bounds the jobs in flight that other processes submit', async () => {
    await listen({ concurrency: 3 });
    const port = Number(jobServer.servers[0].split(':')[1]);
    const payloads = ['0', '1', '2', '3', '4', '5'];
    const replies = submitFromOutside(port, 'slow', payloads);
    await eventually(() => log.inFlight === 3, 'three jobs in flight');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(log.maxInFlight).toBe(3);
    gate.release();
    await expect(replies).resolves.toEqual(payloads);
  });

  test('a handler that never answers: timeout() ends the call and releases its routing entry', async () => {
    await listen();
    const routingMap = (client as unknown as { routingMap: Map<string, unknown> }).routingMap;
    await expect(firstValueFrom(client.send('slow', 'lost').pipe(timeout(200)))).rejects.toThrow(/Timeout/);
    expect(log.slowRuns).toBe(1);
    expect(routingMap.size).toBe(0);
  });

  test('close() drains the jobs in flight before disconnecting', async () => {
    const { app } = await listen();
    const reply = firstValueFrom(client.send('slow', 'last words'));
    await eventually(() => log.inFlight === 1, 'the job to start');
    const closed = app.close();
    apps.splice(apps.indexOf(app), 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    gate.release();
    await closed;
    await expect(reply).resolves.toBe('last words');
  });

  test('close() gives up on a reply stream that never ends after stopTimeoutMs, and ends its processing', async () => {
    const strategy = new ServerGearman({ servers: jobServer.servers, stopTimeoutMs: 200 });
    const ended: string[] = [];
    strategy.setOnProcessingEndHook((_id, context) => ended.push((context as GearmanContext).getFunctionName()));
    const app = await NestFactory.createMicroservice(OptionsModule, { strategy, logger: false });
    await app.listen();
    const reply = firstValueFrom(client.send('endless', 1)).catch((error: unknown) => error);
    await eventually(() => strategy.unwrap<{ jobsInFlight: number }>().jobsInFlight === 1, 'the job to start');
    await app.close();
    expect(ended).toEqual(['endless']);
    await client.close();
    expect(await reply).toBeInstanceOf(Error);
  });

  test('a plain client: non-JSON text arrives as a string; a Buffer result goes back as raw bytes', async () => {
    await listen();
    const result = await raw.submitJob('shout', 'hello there').result;
    expect(result.toString()).toBe('string:HELLO THERE');
    expect((await raw.submitJob('shout', '42').result).toString()).toBe('number:42');
  });

  test('progress and warnings reach a plain client', async () => {
    await listen();
    const job = raw.submitJob('progress', '{}');
    const statuses: [number, number][] = [];
    const warnings: string[] = [];
    job.on('status', (n: number, d: number) => statuses.push([n, d]));
    job.on('warning', (w: Buffer) => warnings.push(w.toString()));
    expect((await job.result).toString()).toBe('"done"');
    expect(statuses).toEqual([[1, 4]]);
    expect(warnings).toEqual(['careful']);
  });

  test('an event handler ends its job with WORK_COMPLETE, a throwing one with WORK_EXCEPTION', async () => {
    await listen();
    const ok = await raw.submitJob('event-ok', '{"id":7}').result;
    expect(ok.length).toBe(0);
    expect(log.events).toEqual([{ id: 7 }]);
    const failure = await raw.submitJob('event-throws', '{}').result.catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GearmanJobExceptionError);
    expect(JSON.parse((failure as GearmanJobExceptionError).data.toString())).toEqual({
      status: 'error',
      message: 'Internal server error',
    });
  });

  test('a job routed to no handler ends with Nest\'s "no matching message handler" error', async () => {
    const reroute: Deserializer = {
      deserialize: (packet: { pattern: string; data: { to?: string } }) => ({ ...packet, pattern: packet.data?.to ?? packet.pattern }),
    };
    await listen({ deserializer: reroute });
    await expect(firstValueFrom(client.send('shout', { to: 'nowhere' }))).rejects.toEqual({
      status: 'error',
      err: 'There is no matching message handler defined in the remote service.',
    });
    await expect(firstValueFrom(client.send('shout', { to: 'progress' }))).resolves.toBe('done');
  });

  test('serializer and deserializer hooks shape what travels', async () => {
    const serializer: Serializer = {
      serialize: (packet: { response?: unknown }) => ({ ...packet, response: { wrapped: packet.response } }),
    };
    await listen({ serializer });
    const unwrapping: Deserializer = {
      deserialize: (packet: { response?: { wrapped: unknown } }) => ({ ...packet, response: packet.response?.wrapped }),
    };
    const hooked = new ClientGearman({ servers: jobServer.servers, deserializer: unwrapping });
    try {
      expect((await raw.submitJob('progress', '1').result).toString()).toBe('{"wrapped":"done"}');
      await expect(firstValueFrom(hooked.send('progress', 1))).resolves.toBe('done');
    } finally {
      await hooked.close();
    }
  });

  test("transportId, status, on() and unwrap() follow Nest's conventions", async () => {
    const strategy = new ServerGearman({ servers: jobServer.servers });
    expect(typeof strategy.transportId).toBe('symbol');
    expect(strategy.transportId).toBe(GEARMAN_TRANSPORT);
    expect(() => strategy.unwrap()).toThrow(/Not initialized/);
    const connected: string[] = [];
    strategy.on('connect', (server) => connected.push(server));
    const statuses: string[] = [];
    strategy.status.subscribe((status) => statuses.push(status));
    const app = await NestFactory.createMicroservice(OptionsModule, { strategy, logger: false });
    await app.listen();
    expect(strategy.unwrap().constructor.name).toBe('GearmanWorker');
    expect(connected).toEqual(jobServer.servers);
    await app.close();
    expect(statuses).toEqual([GearmanStatus.CONNECTED, GearmanStatus.DISCONNECTED]);

    const clientStatuses: string[] = [];
    client.status.subscribe((status) => clientStatuses.push(status));
    expect(() => client.unwrap()).toThrow(/Not initialized/);
    await client.connect();
    expect(client.unwrap()).toBeInstanceOf(GearmanClient);
    await client.close();
    expect(clientStatuses).toEqual([GearmanStatus.CONNECTED, GearmanStatus.DISCONNECTED]);
  });

  test('a handler bound to GEARMAN_TRANSPORT is served; one bound to another transport is not', async () => {
    const { strategy } = await listen();
    const functions = [...strategy.getHandlers().keys()];
    expect(functions).toContain('gearman-only');
    expect(functions).not.toContain('tcp-only');
    await expect(firstValueFrom(client.send('gearman-only', 1))).resolves.toBe('served');
  });

  // Restarting on the same port needs a server we can place: ours (startGearmand picks a fresh port).
  (kind !== 'gearmand' ? test : test.skip)(
    'status follows a job server restart: reconnecting, then connected, and jobs flow again',
    async () => {
      const { strategy } = await listen({ reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
      const statuses: string[] = [];
      strategy.status.subscribe((status) => statuses.push(status));
      const [host, port] = jobServer.servers[0].split(':');
      await jobServer.stop();
      await eventually(() => statuses.includes(GearmanStatus.RECONNECTING), 'reconnecting');
      const restarted = new GearmanJobServer({ host, port: Number(port), logger: false, inProcess: kind === 'GearmanJobServer' });
      await restarted.listen();
      jobServer = { servers: jobServer.servers, stop: () => restarted.close() };
      await eventually(() => statuses[statuses.length - 1] === GearmanStatus.CONNECTED, 'connected again');
      expect(statuses[0]).toBe(GearmanStatus.CONNECTED);
      expect(statuses).toContain(GearmanStatus.DISCONNECTED);
      await expect(firstValueFrom(client.send('gearman-only', 1))).resolves.toBe('served');
    },
  );

  test('one ServerGearman serves every job server in its list', async () => {
    const second = await startJobServer(kind);
    const secondClient = new ClientGearman({ servers: second.servers });
    const strategy = new ServerGearman({ servers: [...jobServer.servers, ...second.servers] });
    const app = await NestFactory.createMicroservice(OptionsModule, { strategy, logger: false });
    try {
      await app.listen();
      await expect(firstValueFrom(client.send('gearman-only', 1))).resolves.toBe('served');
      await expect(firstValueFrom(secondClient.send('gearman-only', 2))).resolves.toBe('served');
    } finally {
      await secondClient.close();
      await app.close();
      await second.stop();
    }
  });

  test('the processing start and end hooks wrap every job', async () => {
    const strategy = new ServerGearman({ servers: jobServer.servers });
    const calls: string[] = [];
    strategy.setOnProcessingStartHook((transportId, context, done) => {
      calls.push(`start ${String(transportId === GEARMAN_TRANSPORT)} ${(context as GearmanContext).getFunctionName()}`);
      return done();
    });
    strategy.setOnProcessingEndHook((_transportId, context) => calls.push(`end ${(context as GearmanContext).getFunctionName()}`));
    const app = await NestFactory.createMicroservice(OptionsModule, { strategy, logger: false });
    apps.push(app);
    await app.listen();
    await lastValueFrom(client.send('progress', 1).pipe(toArray()));
    await raw.submitJob('event-ok', '1').result;
    expect(calls).toEqual(['start true progress', 'end progress', 'start true event-ok', 'end event-ok']);
  });

  test('an unreachable job server fails listen() and connect() with an error', async () => {
    const port = Number(jobServer.servers[0].split(':')[1]);
    await jobServer.stop();
    const strategy = new ServerGearman({ servers: [`127.0.0.1:${port}`], reconnect: { maxAttempts: 0 }, connectTimeoutMs: 500 });
    const app = await NestFactory.createMicroservice(OptionsModule, { strategy, logger: false });
    await expect(app.listen()).rejects.toThrow();
    await app.close();
    const offline = new ClientGearman({ servers: [`127.0.0.1:${port}`], connectTimeoutMs: 500 });
    await expect(firstValueFrom(offline.send('progress', 1))).rejects.toThrow();
    await offline.close();
    jobServer = await startJobServer(kind);
  });
});
