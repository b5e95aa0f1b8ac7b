import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import type { Page } from 'playwright-core';
import { lastValueFrom } from 'rxjs';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import type { GearmanDashboard } from '../../lib/dashboard/gearman-dashboard.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { GEARMAN_DASHBOARD } from '../../lib/nest/module/gearman.constants.js';
import { GearmanModule } from '../../lib/nest/module/gearman.module.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { waitFor } from '../client/support/wait.js';
import { launchChromium, TEST_OUTPUT } from '../support/browser.js';
import { describeWithPeers } from '../support/gearmand.js';

const MAIN = join(process.cwd(), 'dist/cjs/cli/main.js');
const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
/** A browser starts in a few seconds on an idle machine; give a busy one room. */
const BROWSER_TEST_MS = 60_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The cells a function's row shows, as rendered, by field. */
async function renderedRow(page: Page, functionName: string): Promise<Record<string, string> | undefined> {
  const row = page.locator(`#functions tbody tr[data-function="${functionName}"]`);
  if ((await row.count()) === 0) return undefined;
  const cells: Record<string, string> = {};
  for (const field of ['name', 'queued', 'running', 'workers', 'high', 'normal', 'low']) {
    cells[field] = (await row.locator(`td[data-field="${field}"]`).textContent()) ?? '';
  }
  return cells;
}

/** Submits background jobs until stopped (bounded): the queue grows faster than the workers drain it. */
function runLoad(client: GearmanClient, functions: string[], maxJobs = 3000): { close(): Promise<void> } {
  let stopped = false;
  const done = (async () => {
    for (let n = 0; !stopped && n < maxJobs; n++) {
      await client.submitBackgroundJob(functions[n % functions.length], String(n));
      await sleep(15);
    }
  })();
  return {
    async close() {
      stopped = true;
      await done;
    },
  };
}

/** A Nest app with the embedded job server, the module's dashboard (every 250 ms) and these handlers. */
async function startDashboardApp(
  handlers: new (...args: never[]) => unknown,
  options: { actions: boolean; concurrency: number },
): Promise<INestApplication> {
  @Module({
    imports: [
      GearmanModule.forRoot({
        embeddedServer: { port: 0, logger: false },
        dashboard: { actions: options.actions, intervalMs: 250 },
        worker: { concurrency: options.concurrency, stopTimeoutMs: 200 },
        shutdownTimeoutMs: 200,
      }),
    ],
    controllers: [handlers],
  })
  class AppModule {}

  const app = await NestFactory.create(AppModule, { logger: false });
  app.connectMicroservice(GearmanModule.microservice());
  await app.startAllMicroservices();
  return app;
}

describeWithPeers(['chromium'], 'The dashboard in a real browser', () => {
  beforeAll(() => mkdirSync(TEST_OUTPUT, { recursive: true }));

  it(
    '`nestjs-gearman server --http-port`: the page shows the functions, and their counts change while a load runs',
    async () => {
      const child: ChildProcess = spawn(process.execPath, [MAIN, 'server', '-p', '0', '--http-port', '0'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (chunk) => (out += chunk));
      const browser = await launchChromium();
      const opened: { close(): Promise<void> }[] = [];
      try {
        await waitFor(() => /\nhttp on http:\/\/127\.0\.0\.1:\d+\/\n/.test(out), 'the CLI to print its two lines');
        const gearmanPort = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(out)![1];
        const page$ = /http on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)![1];
        const servers = [`127.0.0.1:${gearmanPort}`];
        const worker = new GearmanWorker({ servers, concurrency: 3, clientId: 'image-worker', logger: quiet });
        opened.push({ close: () => worker.stop() });
        for (const name of ['images.resize', 'email.send']) {
          worker.register(name, async (job) => {
            for (let step = 1; step <= 4; step++) {
              job.sendStatus(step, 4);
              await sleep(60);
            }
            return 'done';
          });
        }
        await worker.start();
        const client = new GearmanClient({ servers, logger: quiet });
        opened.push(client);
        const load = runLoad(client, ['images.resize', 'email.send']);
        opened.push(load);

        const page = await browser.context.newPage();
        const problems: string[] = [];
        page.on('pageerror', (error) => problems.push(error.message));
        page.on('console', (message) => {
          if (message.type() === 'error') problems.push(message.text());
        });
        await page.goto(page$);
        await page.waitForSelector('#functions tbody tr[data-function="images.resize"]');
        await page.waitForSelector('#functions tbody tr[data-function="email.send"]');
        const first = await renderedRow(page, 'images.resize');
        expect(first).toMatchObject({ name: 'images.resize', workers: '1' });
        // The page updates itself: the queued count it shows moves while the load runs, without a reload.
        await waitFor(
          async () => (await renderedRow(page, 'images.resize'))?.queued !== first!.queued,
          'the rendered queued count to change',
        );
        await page.waitForSelector('#jobs tbody tr[data-job]');
        const bar = await page.locator('#jobs tbody tr [data-field="progress"] .bar > div').first().getAttribute('style');
        expect(bar).toMatch(/^width: \d+(\.\d+)?%;$/);
        expect(await page.textContent('#workers tbody')).toContain('image-worker');
        expect(await page.textContent('#servers')).toContain(`${servers[0]} — up`);
        expect(await page.textContent('#live')).toBe('live');
        // The chart counts the jobs the server ends, from its lifecycle.
        expect(await page.textContent('#throughput-source')).toBe('(the job server)');
        await waitFor(async () => Number(await page.textContent('#rate-completed')) > 0, 'a completed rate above zero');
        // Read-only: no action buttons.
        expect(await page.$$('#functions button, #jobs button')).toHaveLength(0);
        await page.screenshot({ path: join(TEST_OUTPUT, 'dashboard-standalone.png'), fullPage: true });
        expect(problems).toEqual([]);

        // /metrics on the same port.
        const metrics = await (await fetch(`${page$}metrics`)).text();
        expect(metrics).toContain(`gearman_server_workers{server="${servers[0]}",function="images.resize"} 1`);
        expect(metrics).toContain('process_resident_memory_bytes');
      } finally {
        for (const item of opened.reverse()) await item.close();
        await browser.close();
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    },
    BROWSER_TEST_MS,
  );

  it(
    "GearmanModule's dashboard: throughput chart, this app's workers, and a job cancelled from the page",
    async () => {
      const started: string[] = [];
      let finishReports!: () => void;
      const reportsFinished = new Promise<void>((resolve) => (finishReports = resolve));

      @Controller()
      class Handlers {
        @MessagePattern('orders.process')
        async process(@Payload() n: number, @Ctx() ctx: GearmanContext) {
          for (let step = 1; step <= 3; step++) {
            ctx.sendStatus(step, 3);
            await sleep(30);
          }
          if (n % 10 === 0) throw new Error('refused');
          return n;
        }

        @MessagePattern('reports.build')
        async build(@Ctx() ctx: GearmanContext) {
          started.push(ctx.getHandle());
          ctx.sendStatus(1, 10);
          await reportsFinished;
          return 'late';
        }
      }

      const app = await startDashboardApp(Handlers, { actions: true, concurrency: 4 });
      const browser = await launchChromium();
      let stopped = false;
      let callers: Promise<void>[] = [];
      try {
        const dashboard = app.get<GearmanDashboard>(GEARMAN_DASHBOARD);
        const client = app.get(ClientGearman);
        callers = Array.from({ length: 3 }, async (_, caller) => {
          for (let n = caller; !stopped && n < 3000; n += 3) await lastValueFrom(client.send('orders.process', n)).catch(() => undefined);
        });
        const long = lastValueFrom(client.send('reports.build', {})).catch((error: unknown) => error);

        const page = await browser.context.newPage();
        await page.goto(`http://127.0.0.1:${dashboard.address().port}/`);
        await page.waitForSelector('#functions tbody tr[data-function="orders.process"]');
        await waitFor(async () => Number(await page.textContent('#rate-completed')) > 0, 'a completed rate above zero');
        await waitFor(
          async () => Number(await page.textContent('#rate-failed')) > 0 || (await page.$$('polyline.failed')).length > 0,
          'the failed line',
        );
        expect(await page.$$('#throughput polyline')).toHaveLength(2);
        expect(await page.textContent('#throughput-source')).toBe("(this app's workers)");
        expect(await page.isHidden('#app-section')).toBe(false);
        expect(await page.textContent('#app-workers tbody')).toContain('orders.process reports.build');
        await waitFor(() => started.length === 1, 'the long job to start');
        const row = `#jobs tbody tr[data-job="${started[0]}"]`;
        await page.waitForSelector(row);
        await sleep(1500);
        await page.screenshot({ path: join(TEST_OUTPUT, 'dashboard-module.png'), fullPage: true });

        // Actions are on: the long job is cancelled from the page, and its caller gets the failure.
        await page.click(`${row} button`);
        expect(await long).toMatchObject({ code: 'JOB_FAILED' });
        await page.waitForSelector(row, { state: 'detached' });
        expect(await page.textContent('#message')).toBe('');
      } finally {
        stopped = true;
        finishReports();
        await Promise.all(callers);
        await browser.close();
        await app.close();
      }
    },
    BROWSER_TEST_MS,
  );
  it(
    "GearmanModule's dashboard: a running batch with its items' progress, then the results kept",
    async () => {
      const gates: (() => void)[] = [];

      @Controller()
      class Handlers {
        @MessagePattern('slices.sum')
        async sum(@Payload() n: number) {
          await new Promise<void>((resolve) => gates.push(resolve));
          return n;
        }
      }

      const app = await startDashboardApp(Handlers, { actions: false, concurrency: 2 });
      const browser = await launchChromium();
      try {
        const dashboard = app.get<GearmanDashboard>(GEARMAN_DASHBOARD);
        const handle = await app.get(ClientGearman).emitBatch('slices.sum', [1, 2, 3, 4, 5, 6]);
        const page = await browser.context.newPage();
        await page.goto(`http://127.0.0.1:${dashboard.address().port}/`);
        const row = `#batches tbody tr[data-batch="${handle}"]`;
        await page.waitForSelector(row);
        const progress = () => page.textContent(`${row} .progress-text`);
        expect(await progress()).toBe('0/6');
        expect(await page.textContent(`${row} td[data-field="function"]`)).toBe('slices.sum');
        expect(await page.textContent('#results-kept')).toMatch(/batches running: 1$/);

        // Two items end: the page follows.
        await waitFor(() => gates.length === 2, 'two items to run');
        for (const release of gates.splice(0)) release();
        await waitFor(async () => (await progress()) === '2/6', 'the batch at 2/6');

        // The rest end: the batch leaves the list and its outcomes are kept.
        await waitFor(async () => {
          for (const release of gates.splice(0)) release();
          return (await page.$(row)) === null;
        }, 'the batch to end');
        await waitFor(async () => /batches running: 0$/.test((await page.textContent('#results-kept')) ?? ''), 'no batch running');
        const kept = Number(/results kept: (\d+)/.exec((await page.textContent('#results-kept')) ?? '')?.[1]);
        expect(kept).toBeGreaterThan(0);
        expect(await page.isVisible('#batches-empty')).toBe(true);
      } finally {
        for (const release of gates.splice(0)) release();
        await browser.close();
        await app.close();
      }
    },
    BROWSER_TEST_MS,
  );
});
