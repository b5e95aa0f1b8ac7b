import 'reflect-metadata';
import type { INestApplication, INestMicroservice, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GEARMAN_JOB_SERVER, GearmanModule, type GearmanJobServer } from '../../lib/index.js';
import { readEvents, request } from '../../sample/demo/http.js';
import { GatewayModule } from '../../sample/gateway/gateway.module.js';
import { InventoryModule } from '../../sample/inventory/inventory.module.js';
import type {
  BatchProgress,
  Order,
  Outbox,
  Quote,
  ReportSection,
  ReportSummary,
  User,
  WordCountStatus,
} from '../../sample/shared/patterns.js';
import { SampleConfig } from '../../sample/shared/sample-config.js';
import { WorkerModule } from '../../sample/worker/worker.module.js';

/**
 * The three sample apps, really started in this process (real HTTP, real job server, real
 * workers), configured as the demo runner configures the processes: the gateway's embedded server
 * on a free port, the microservices pointed at it.
 */
describe('the sample system, end to end', () => {
  let outboxDir: string;
  let gateway: INestApplication;
  let worker: INestMicroservice;
  let inventory: INestMicroservice;
  let baseUrl: string;

  async function startMicroservice(module: Type, config: SampleConfig): Promise<INestMicroservice> {
    const moduleRef = await Test.createTestingModule({ imports: [module] })
      .overrideProvider(SampleConfig)
      .useValue(config)
      .compile();
    const app = moduleRef.createNestMicroservice(GearmanModule.microservice());
    app.useLogger(false);
    await app.listen();
    return app;
  }

  beforeAll(async () => {
    outboxDir = await mkdtemp(join(tmpdir(), 'sample-spec-'));
    const outboxFile = join(outboxDir, 'outbox.log');
    const gatewayRef = await Test.createTestingModule({ imports: [GatewayModule] })
      .overrideProvider(SampleConfig)
      .useValue(new SampleConfig(undefined, 0, 0, outboxFile, undefined))
      .compile();
    gateway = gatewayRef.createNestApplication({ logger: false });
    await gateway.listen(0, '127.0.0.1');
    baseUrl = await gateway.getUrl();
    const { port } = gateway.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address();
    const microserviceConfig = new SampleConfig([`127.0.0.1:${port}`], 0, 0, outboxFile, undefined);
    worker = await startMicroservice(WorkerModule, microserviceConfig);
    inventory = await startMicroservice(InventoryModule, microserviceConfig);
  });

  afterAll(async () => {
    await worker?.close();
    await inventory?.close();
    await gateway?.close();
    await rm(outboxDir, { recursive: true, force: true });
  });

  it('GET / lists the routes', async () => {
    const { status, body } = await request<Record<string, string>>(baseUrl, 'GET', '/');
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(
      expect.arrayContaining(['POST /users', 'GET /reports/:name?sections=5', 'GET /quotes/:symbol?callers=5']),
    );
  });

  it('POST /users answers with the worker reply (send) and queues the welcome e-mail (emit), which GET /emails then shows', async () => {
    const created = await request<{ user: User; welcomeEmailJob: string }>(baseUrl, 'POST', '/users', {
      name: 'Grace Hopper',
      email: 'grace@example.com',
    });
    expect(created.status).toBe(201);
    expect(created.body.user).toMatchObject({ id: expect.stringMatching(/^u-\d+$/), name: 'Grace Hopper', email: 'grace@example.com' });
    expect(created.body.welcomeEmailJob).toMatch(/^H:/);

    let outbox: Outbox | undefined;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      outbox = (await request<Outbox>(baseUrl, 'GET', '/emails')).body;
      if (outbox.emails.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(outbox!.emails).toEqual([
      expect.objectContaining({ to: 'Grace Hopper <grace@example.com>', subject: 'Welcome, Grace Hopper!' }),
    ]);
    // The log line names the job that wrote it: the background job the gateway queued.
    expect(await readFile(outbox!.file, 'utf8')).toContain(
      `To: Grace Hopper <grace@example.com>  Subject: Welcome, Grace Hopper!  (job ${created.body.welcomeEmailJob})`,
    );
  });

  it("POST /users turns the worker's RpcException into a 400", async () => {
    const refused = await request(baseUrl, 'POST', '/users', { name: 'Nobody', email: 'nowhere' });
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({ code: 'INVALID', message: 'a user needs a name and a valid e-mail address' });
  });

  it('POST /orders goes gateway → orders (worker) → inventory, and passes the inventory refusals back', async () => {
    const placed = await request<Order>(baseUrl, 'POST', '/orders', { sku: 'gear-42', quantity: 4 });
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ sku: 'gear-42', quantity: 4, reservation: { sku: 'gear-42', reserved: 4, remaining: 6 } });

    const tooMany = await request(baseUrl, 'POST', '/orders', { sku: 'cog-7', quantity: 3 });
    expect(tooMany.status).toBe(409);
    expect(tooMany.body).toEqual({ code: 'OUT_OF_STOCK', message: 'only 2 × cog-7 left, 3 asked' });

    const unknown = await request(baseUrl, 'POST', '/orders', { sku: 'nope', quantity: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'UNKNOWN_SKU' });
  });

  it('GET /reports/:name streams progress and sections as server-sent events, then the summary', async () => {
    const seen: string[] = [];
    const events = await readEvents(`${baseUrl}/reports/q3?sections=3`, (event) => seen.push(event.type));
    expect(seen).toEqual(['progress', 'section', 'progress', 'section', 'progress', 'section', 'summary']);
    expect(events.filter((event) => event.type === 'progress').map((event) => event.data)).toEqual([
      { done: 1, total: 3, percent: 33 },
      { done: 2, total: 3, percent: 67 },
      { done: 3, total: 3, percent: 100 },
    ]);
    const sections = events.filter((event) => event.type === 'section').map((event) => event.data as ReportSection);
    expect(sections.map((section) => section.title)).toEqual(['q3, week 1', 'q3, week 2', 'q3, week 3']);
    const summary = events.at(-1)!.data as ReportSummary;
    const total = sections.flatMap((section) => section.rows).reduce((sum, row) => sum + row.value, 0);
    expect(summary).toEqual({ name: 'q3', sections: 3, total });
  });

  it('POST /batch queues prioritised background jobs that GET /batch/:id shows started high, normal, low', async () => {
    const submitted = await request<{ batchId: string; submitted: { name: string; priority: string; job: string }[] }>(
      baseUrl,
      'POST',
      '/batch',
      {
        items: [
          { name: 'l1', priority: 'low' },
          { name: 'n1', priority: 'normal' },
          { name: 'l2', priority: 'low' },
          { name: 'h1', priority: 'high' },
          { name: 'n2', priority: 'normal' },
          { name: 'h2', priority: 'high' },
        ],
      },
    );
    expect(submitted.status).toBe(201);
    expect(submitted.body.submitted.every((item) => /^H:/.test(item.job))).toBe(true);

    let progress: BatchProgress | undefined;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      progress = (await request<BatchProgress>(baseUrl, 'GET', `/batch/${submitted.body.batchId}`)).body;
      if (progress.started.length === 6) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    // Submitted together, the six jobs wait in the queue together, so priority decides who starts first.
    expect(progress!.started).toEqual(['h1', 'h2', 'n1', 'n2', 'l1', 'l2']);
  });

  it('GET /quotes/:symbol coalesces concurrent calls with one unique id into one computation', async () => {
    const { status, body } = await request<{ callers: number; computations: number; quotes: Quote[] }>(
      baseUrl,
      'GET',
      '/quotes/NEST?callers=4',
    );
    expect(status).toBe(200);
    expect(body.callers).toBe(4);
    expect(body.computations).toBe(1);
    expect(new Set(body.quotes.map((quote) => JSON.stringify(quote))).size).toBe(1);
    // A later call is a new job, computed again.
    const again = await request<{ quotes: Quote[] }>(baseUrl, 'GET', '/quotes/NEST?callers=1');
    expect(again.body.quotes[0].computation).toBeGreaterThan(body.quotes[0].computation);
  });

  it('POST /wordcount starts a background batch; GET /wordcount/:handle shows its progress, then the gathered counts', async () => {
    const started = await request<{ handle: string; chunks: number }>(baseUrl, 'POST', '/wordcount', { chunks: 6 });
    expect(started.status).toBe(202);
    expect(started.body).toEqual({ handle: expect.stringMatching(/^H:.+:[0-9a-z]+-[0-9a-f]{16}$/), chunks: 6 });
    let status: WordCountStatus | undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      status = (await request<WordCountStatus>(baseUrl, 'GET', `/wordcount/${encodeURIComponent(started.body.handle)}`)).body;
      if (status.state === 'completed') break;
      expect(status.state).toBe('running');
      expect(status.progress.of).toBe(6);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(status).toMatchObject({ state: 'completed', progress: { done: 6, of: 6 }, result: { chunks: 6, words: 240 } });
    expect(status!.result!.top).toHaveLength(5);
    const unknown = await request<WordCountStatus>(baseUrl, 'GET', '/wordcount/H:nowhere:1');
    expect(unknown.body).toEqual({ handle: 'H:nowhere:1', state: 'unknown', progress: { done: 0, of: 0 } });
  });
});
