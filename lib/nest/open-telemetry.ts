/**
 * The few parts of `@opentelemetry/api` the transport uses, typed here so that nothing of this
 * package's types depends on OpenTelemetry being installed. The API is an optional peer
 * dependency: when it is installed, `ClientGearman` and `ServerGearman` start spans and carry the
 * trace context; when it is not, they do neither. Without an OpenTelemetry SDK registered the API
 * is a no-op, and so is all of this.
 */

/** An OpenTelemetry `Context`. */
export interface OtelContext {
  getValue(key: symbol): unknown;
  setValue(key: symbol, value: unknown): OtelContext;
}

export interface OtelSpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: Error | string): void;
  end(): void;
}

interface OtelTracer {
  startSpan(
    name: string,
    options: { kind: number; attributes?: Record<string, string | number | boolean> },
    context: OtelContext,
  ): OtelSpan;
}

export interface OpenTelemetryApi {
  readonly ROOT_CONTEXT: OtelContext;
  createContextKey(description: string): symbol;
  readonly SpanKind: { readonly CLIENT: number; readonly SERVER: number; readonly PRODUCER: number; readonly CONSUMER: number };
  readonly SpanStatusCode: { readonly ERROR: number };
  readonly context: { active(): OtelContext; with<T>(context: OtelContext, fn: () => T): T };
  readonly propagation: {
    inject(context: OtelContext, carrier: Record<string, string>): void;
    extract(context: OtelContext, carrier: Record<string, string>): OtelContext;
  };
  readonly trace: { getTracer(name: string, version?: string): OtelTracer; setSpan(context: OtelContext, span: OtelSpan): OtelContext };
}

const TRACER_NAME = 'nestjs-gearman';

let loading: Promise<OpenTelemetryApi | undefined> | undefined;

/** `@opentelemetry/api` when it is installed, else undefined (tracing is then off); loaded once. */
export function loadOpenTelemetry(): Promise<OpenTelemetryApi | undefined> {
  loading ??= import('@opentelemetry/api').then(
    (loaded: unknown) => {
      // The ES build's namespace has every name; a CommonJS view may put them under `default`.
      const module = loaded as Partial<OpenTelemetryApi> & { default?: Partial<OpenTelemetryApi> };
      return (module.SpanKind ? module : module.default?.SpanKind ? module.default : undefined) as OpenTelemetryApi | undefined;
    },
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'MODULE_NOT_FOUND' || error.code === 'ERR_MODULE_NOT_FOUND') return undefined;
      throw error;
    },
  );
  return loading;
}

const probes = new WeakMap<OpenTelemetryApi, () => boolean>();

/**
 * Whether tracing can do anything here: an SDK registered a context manager (every OpenTelemetry
 * SDK does), so a context entered now is the active one inside. Without one the API is a no-op from
 * end to end, and the transport skips it rather than pay for spans nobody records (a library
 * installing `@opentelemetry/api` for its own use is common). Without a context manager this costs
 * two calls; checked per job, so an SDK registered later is seen at once.
 */
export function isTracingActive(otel: OpenTelemetryApi): boolean {
  let probe = probes.get(otel);
  if (!probe) {
    const probeContext = otel.ROOT_CONTEXT.setValue(otel.createContextKey('nestjs-gearman tracing probe'), true);
    const inside = () => otel.context.active() === probeContext;
    probe = () => otel.context.with(probeContext, inside);
    probes.set(otel, probe);
  }
  return probe();
}

/** What a span says about the job it covers (OpenTelemetry's messaging conventions). */
function jobAttributes(functionName: string, background: boolean): Record<string, string | number | boolean> {
  return {
    'messaging.system': 'gearman',
    'messaging.destination.name': functionName,
    'messaging.operation.type': background ? 'send' : 'process',
  };
}

/**
 * The client's span for one job, a child of the active context, and the trace context to send
 * with it (filled by the registered propagator: W3C `traceparent` / `tracestate` by default).
 */
export function startClientSpan(
  otel: OpenTelemetryApi,
  functionName: string,
  background: boolean,
): { span: OtelSpan; carrier: Record<string, string> } {
  const parent = otel.context.active();
  const span = otel.trace
    .getTracer(TRACER_NAME)
    .startSpan(
      `${background ? 'publish' : 'send'} ${functionName}`,
      { kind: background ? otel.SpanKind.PRODUCER : otel.SpanKind.CLIENT, attributes: jobAttributes(functionName, background) },
      parent,
    );
  const carrier: Record<string, string> = {};
  otel.propagation.inject(otel.trace.setSpan(parent, span), carrier);
  return { span, carrier };
}

/** The worker's span for one job, a child of the trace context the job carried (a new trace without one). */
export function startServerSpan(
  otel: OpenTelemetryApi,
  functionName: string,
  handle: string,
  event: boolean,
  carrier: Readonly<Record<string, string>> | undefined,
): { span: OtelSpan; context: OtelContext } {
  const parent = carrier ? otel.propagation.extract(otel.ROOT_CONTEXT, { ...carrier }) : otel.context.active();
  const span = otel.trace.getTracer(TRACER_NAME).startSpan(
    `process ${functionName}`,
    {
      kind: event ? otel.SpanKind.CONSUMER : otel.SpanKind.SERVER,
      attributes: { ...jobAttributes(functionName, false), 'messaging.message.id': handle },
    },
    parent,
  );
  return { span, context: otel.trace.setSpan(parent, span) };
}

/** Ends a span, marking it failed when there is an error. */
export function endSpan(otel: OpenTelemetryApi, span: OtelSpan, error?: unknown): void {
  if (error !== undefined) {
    const message = error instanceof Error ? error.message : typeof error === 'string' ? error : describe(error);
    span.recordException(error instanceof Error ? error : String(message));
    span.setStatus({ code: otel.SpanStatusCode.ERROR, message });
  }
  span.end();
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
