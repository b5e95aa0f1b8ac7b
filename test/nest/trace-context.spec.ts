import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import * as otelApi from '@opentelemetry/api';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { lastValueFrom } from 'rxjs';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { GearmanRecordBuilder } from '../../lib/nest/gearman-record-builder.js';
import { isTracingActive, type OpenTelemetryApi } from '../../lib/nest/open-telemetry.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { sealEnvelope } from '../../lib/protocol/envelope.js';
import { describeWithPeers, findExecutable } from '../support/gearmand.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** What a handler saw of the job's trace: the metadata, the W3C context, and OpenTelemetry's active span. */
interface Seen {
  payload: unknown;
  metadata: Record<string, string> | undefined;
  traceContext: { traceparent: string; tracestate?: string } | undefined;
  activeTraceId: string | undefined;
}

@Controller()
class TracedHandlers {
  @MessagePattern('trace.inspect')
  inspect(@Payload() payload: unknown, @Ctx() ctx: GearmanContext): Seen {
    const active = trace.getActiveSpan()?.spanContext();
    return {
      payload,
      metadata: ctx.getMetadata() as Record<string, string> | undefined,
      traceContext: ctx.getTraceContext(),
      activeTraceId: active && trace.isSpanContextValid(active) ? active.traceId : undefined,
    };
  }
}

@Module({ controllers: [TracedHandlers] })
class WorkerModule {}

/** An OpenTelemetry SDK as an app registers it: W3C propagation, async-hooks context, spans kept in memory. */
function registerOpenTelemetry(): { exporter: InMemorySpanExporter; provider: BasicTracerProvider } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return { exporter, provider };
}

function unregisterOpenTelemetry(): void {
  trace.disable();
  context.disable();
  propagation.disable();
}

describeOnJobServers('Trace context from ClientGearman to ServerGearman', (kind) => {
  let jobServer: JobServerUnderTest;
  let app: INestMicroservice;
  const clients: ClientGearman[] = [];
  const newClient = (options: ConstructorParameters<typeof ClientGearman>[0] = {}) => {
    const client = new ClientGearman({ servers: jobServer.servers, ...options });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    jobServer = await startJobServer(kind);
    app = await NestFactory.createMicroservice(WorkerModule, {
      strategy: new ServerGearman({ servers: jobServer.servers }),
      logger: false,
    });
    await app.listen();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });
  afterAll(async () => {
    await app.close();
    await jobServer.stop();
  });

  it('metadata set on the client (record builder, and a Nest 12 dispatch hook) arrives in the handler', async () => {
    const client = newClient({ envelope: true });
    if (process.env.EXPECTED_NEST_MAJOR !== '11') {
      // Nest 12: what instrumentation attaches to every outgoing packet.
      (client as unknown as { setOnDispatchHook(hook: (packet: { metadata?: Record<string, string> }) => void): void }).setOnDispatchHook(
        (packet) => {
          packet.metadata = { tenant: 'acme', traceparent: TRACEPARENT };
        },
      );
    }
    const record = new GearmanRecordBuilder({ n: 1 })
      .setMetadata(process.env.EXPECTED_NEST_MAJOR === '11' ? { tenant: 'acme', traceparent: TRACEPARENT } : { locale: 'fr' })
      .build();
    const seen = await lastValueFrom(client.send<Seen>('trace.inspect', record));
    expect(seen.payload).toEqual({ n: 1 });
    expect(seen.metadata).toMatchObject({ tenant: 'acme', traceparent: TRACEPARENT });
    if (process.env.EXPECTED_NEST_MAJOR !== '11') expect(seen.metadata).toMatchObject({ locale: 'fr' });
    expect(seen.traceContext).toEqual({ traceparent: TRACEPARENT });
  });

  it('without an SDK (no context manager) tracing is off: the API would do nothing, so no span is even started', () => {
    expect(isTracingActive(otelApi as unknown as OpenTelemetryApi)).toBe(false);
  });

  it('without the envelope option nothing is sent ahead of the payload, whatever metadata there is', async () => {
    const client = newClient({ envelope: (name) => name !== 'trace.inspect' });
    const seen = await lastValueFrom(
      client.send<Seen>('trace.inspect', new GearmanRecordBuilder('bare').setMetadata({ tenant: 'acme' }).build()),
    );
    expect(seen).toEqual({ payload: 'bare', metadata: undefined, traceContext: undefined, activeTraceId: undefined });
  });

  it('a plain Gearman client that sends an envelope-shaped but broken payload gets an exception, not a crash', async () => {
    const low = new GearmanClient({ servers: jobServer.servers, logger: { log() {}, warn() {}, error() {} } });
    try {
      const broken = sealEnvelope({ metadata: { count: 1 } }, Buffer.from('"x"'));
      await expect(low.submitJob('trace.inspect', broken).result).rejects.toMatchObject({ code: 'JOB_EXCEPTION' });
      // An intact envelope from a non-Nest client works as well as a Nest client's.
      const intact = sealEnvelope({ metadata: { traceparent: TRACEPARENT } }, Buffer.from('"y"'));
      const seen = JSON.parse((await low.submitJob('trace.inspect', intact).result).toString()) as Seen;
      expect(seen).toMatchObject({ payload: 'y', traceContext: { traceparent: TRACEPARENT } });
    } finally {
      await low.close();
    }
  });

  describe('with an OpenTelemetry SDK registered', () => {
    let exporter: InMemorySpanExporter;
    beforeAll(() => {
      exporter = registerOpenTelemetry().exporter;
    });
    afterAll(() => unregisterOpenTelemetry());
    beforeEach(() => exporter.reset());

    it('with one, tracing is on', () => {
      expect(isTracingActive(otelApi as unknown as OpenTelemetryApi)).toBe(true);
    });

    it('a request traced in a gateway, its Gearman job and the worker handler are one trace', async () => {
      const client = newClient({ envelope: true });
      const tracer = trace.getTracer('gateway');
      const gatewaySpan = tracer.startSpan('GET /orders/42', { kind: SpanKind.SERVER });
      const seen = await context.with(trace.setSpan(context.active(), gatewaySpan), () =>
        lastValueFrom(client.send<Seen>('trace.inspect', { order: 42 })),
      );
      gatewaySpan.end();
      const traceId = gatewaySpan.spanContext().traceId;
      expect(seen.activeTraceId).toBe(traceId);
      expect(seen.traceContext?.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

      await eventually(() => exporter.getFinishedSpans().length >= 3, 'the three spans to end');
      const spans = exporter.getFinishedSpans();
      const byName = (name: string) => spans.find((span) => span.name === name)!;
      const gateway = byName('GET /orders/42');
      const send = byName('send trace.inspect');
      const processed = byName('process trace.inspect');
      expect([gateway, send, processed].map((span) => span.spanContext().traceId)).toEqual([traceId, traceId, traceId]);
      expect(send.parentSpanContext?.spanId).toBe(gateway.spanContext().spanId);
      expect(processed.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
      expect(send.kind).toBe(SpanKind.CLIENT);
      expect(processed.kind).toBe(SpanKind.SERVER);
      expect(processed.attributes).toMatchObject({ 'messaging.system': 'gearman', 'messaging.destination.name': 'trace.inspect' });
      expect(processed.attributes['messaging.message.id']).toMatch(/^H:/);
      // The handler's trace context is the client span's own.
      expect(seen.traceContext?.traceparent.split('-')[2]).toBe(send.spanContext().spanId);
    });

    it('emitBatch() ends the span each item is encoded with (one per item, none left open)', async () => {
      if (kind === 'gearmand') return; // batches on gearmand need a result store; the items are encoded alike
      const client = newClient({ envelope: true });
      await client.connect();
      const batch = await client.emitBatch('trace.inspect', [1, 2, 3]);
      expect(await client.waitForResult(batch, { timeoutMs: 10_000 })).toMatchObject({ state: 'completed' });
      const sent = exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.CLIENT);
      expect(sent.map((span) => span.name)).toEqual(['send trace.inspect', 'send trace.inspect', 'send trace.inspect']);
    });

    it('a client without the envelope still records its span, and the worker starts a trace of its own', async () => {
      const client = newClient();
      const seen = await lastValueFrom(client.send<Seen>('trace.inspect', 'alone'));
      expect(seen.traceContext).toBeUndefined();
      await eventually(() => exporter.getFinishedSpans().length >= 2, 'both spans to end');
      const spans = exporter.getFinishedSpans();
      const send = spans.find((span) => span.name === 'send trace.inspect')!;
      const processed = spans.find((span) => span.name === 'process trace.inspect')!;
      expect(processed.spanContext().traceId).not.toBe(send.spanContext().traceId);
      expect(seen.activeTraceId).toBe(processed.spanContext().traceId);
    });
  });
});

describeWithPeers(['gearman'], 'A plain gearman CLI worker and trace context', () => {
  let jobServer: JobServerUnderTest;
  let cliWorker: ChildProcess;
  const clients: ClientGearman[] = [];

  beforeAll(async () => {
    jobServer = await startJobServer('GearmanJobServer');
    const [host, port] = jobServer.servers[0].split(':');
    cliWorker = spawn(findExecutable('gearman')!, ['-h', host, '-p', port, '-w', '-f', 'trace.cat', '--', 'cat'], { stdio: 'ignore' });
    const probe = new GearmanClient({ servers: jobServer.servers });
    try {
      await eventually(async () => (await probe.submitJob('trace.cat', 'ready?').result).toString() === 'ready?', 'the CLI worker');
    } finally {
      await probe.close();
    }
    registerOpenTelemetry();
  });
  afterAll(async () => {
    unregisterOpenTelemetry();
    for (const client of clients) await client.close();
    cliWorker.kill('SIGKILL');
    await jobServer.stop();
  });

  it('receives the bare payload from a Nest client inside a trace, metadata and all, when the envelope does not cover its function', async () => {
    const client = new ClientGearman({ servers: jobServer.servers, envelope: (name) => name.startsWith('nest.') });
    clients.push(client);
    const span = trace.getTracer('gateway').startSpan('GET /echo');
    const echoed = await context.with(trace.setSpan(context.active(), span), () =>
      lastValueFrom(client.send<unknown>('trace.cat', new GearmanRecordBuilder({ hello: 'cli' }).setMetadata({ tenant: 'acme' }).build())),
    );
    span.end();
    // cat returns exactly the bytes it got: the JSON payload, nothing ahead of it.
    expect(echoed).toEqual({ hello: 'cli' });
  });

  it('would see the envelope bytes if a client opted in for its function: which is why it is opt-in', async () => {
    const client = new ClientGearman({ servers: jobServer.servers, envelope: true });
    clients.push(client);
    const span = trace.getTracer('gateway').startSpan('GET /echo');
    const raw = await context.with(trace.setSpan(context.active(), span), async () => {
      await client.connect();
      return client.unwrap().submitJob('trace.cat', 'plain').result;
    });
    span.end();
    // The low-level client never adds an envelope either: only ClientGearman with `envelope` does.
    expect(raw.toString()).toBe('plain');
    const sent = await lastValueFrom(client.send<unknown>('trace.cat', 'x'));
    expect(Buffer.isBuffer(sent) || typeof sent === 'string').toBe(true);
    expect(String(sent).startsWith('\0NGE')).toBe(true);
  });
});
