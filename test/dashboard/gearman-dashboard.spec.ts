import { request } from 'node:http';
import { Registry } from 'prom-client';
import { GearmanAdminClient } from '../../lib/client/admin-client.js';
import type { DashboardState } from '../../lib/dashboard/dashboard-state.js';
import { GearmanDashboard, type GearmanDashboardOptions } from '../../lib/dashboard/gearman-dashboard.js';
import { WorkerJobCounter } from '../../lib/dashboard/worker-job-counter.js';
import { GearmanMetrics } from '../../lib/metrics/gearman-metrics.js';
import { useJobServer } from '../client/support/harness.js';
import { JOB_SERVER_KINDS } from '../client/support/job-servers.js';
import { deferred, waitFor } from '../client/support/wait.js';
import { describeWithPeers, freePort } from '../support/gearmand.js';

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

/** Follows `api/events` and keeps every `state` event it gets. */
function follow(base: string): { states: DashboardState[]; stop(): void; status: Promise<number> } {
  const states: DashboardState[] = [];
  let statusOf!: (status: number) => void;
  const status = new Promise<number>((resolve) => (statusOf = resolve));
  const req = request(`${base}api/events`, (response) => {
    statusOf(response.statusCode ?? 0);
    let buffer = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^event: state\ndata: (.*)$/s.exec(event)?.[1];
        if (data) states.push(JSON.parse(data) as DashboardState);
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return { states, status, stop: () => req.destroy() };
}

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `GearmanDashboard on ${kind.name}`, () => {
    const t = useJobServer(kind);

    async function start(options: Partial<GearmanDashboardOptions> = {}): Promise<{ dashboard: GearmanDashboard; base: string }> {
      const dashboard = new GearmanDashboard({ servers: [t.server.address], intervalMs: 100, logger: quiet, ...options });
      await dashboard.listen();
      t.defer(() => dashboard.close());
      return { dashboard, base: `http://127.0.0.1:${dashboard.address().port}/` };
    }

    it('serves the page with a strict content security policy, and the state as JSON', async () => {
      const worker = t.worker({ clientId: 'resizer' });
      worker.register('dash.resize', () => 'ok');
      await worker.start();
      await t.client().submitBackgroundJob('dash.report', 'x', { priority: 'low' });
      const { base } = await start();

      const page = await fetch(base);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await page.text()).toContain('<script type="module" src="dashboard.js"></script>');
      for (const [asset, type] of [
        ['dashboard.js', 'text/javascript'],
        ['dashboard.css', 'text/css'],
      ]) {
        const response = await fetch(`${base}${asset}`);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toContain(type);
      }

      await waitFor(async () => {
        const state = (await (await fetch(`${base}api/state`)).json()) as DashboardState;
        return state.servers[0].workers.length === 1;
      }, 'the worker to show');
      const state = (await (await fetch(`${base}api/state`)).json()) as DashboardState;
      expect(state).toMatchObject({ intervalMs: 100, actions: false });
      expect(state.throughput).toBeUndefined();
      const [server] = state.servers;
      expect(server).toMatchObject({ server: t.server.address, reachable: true });
      expect(server.functions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'dash.resize', queued: 0, running: 0, workers: 1 }),
          expect.objectContaining({ name: 'dash.report', queued: 1, queuedByPriority: { high: 0, normal: 0, low: 1 } }),
        ]),
      );
      expect(server.workers).toEqual([expect.objectContaining({ clientId: 'resizer', functions: ['dash.resize'] })]);
      expect((await fetch(`${base}nowhere`)).status).toBe(404);
      expect((await fetch(`${base}metrics`)).status).toBe(404);
      expect((await fetch(base, { method: 'DELETE' })).status).toBe(405);
    });

    it('pushes the state over server-sent events as jobs come and go, running jobs with their progress', async () => {
      const release = deferred();
      const worker = t.worker();
      worker.register('dash.slow', async (job) => {
        job.sendStatus(2, 5);
        await release.promise;
        return 'done';
      });
      await worker.start();
      const { base } = await start();
      const events = follow(base);
      t.defer(async () => events.stop());
      expect(await events.status).toBe(200);
      const latest = () => events.states.at(-1)?.servers[0];
      await waitFor(() => latest() !== undefined, 'a first state');

      const client = t.client();
      await client.submitBackgroundJob('dash.queued', 'a');
      await client.submitBackgroundJob('dash.queued', 'b');
      await waitFor(() => latest()?.functions.find((fn) => fn.name === 'dash.queued')?.queued === 2, 'two queued jobs');
      const job = client.submitJob('dash.slow', 'x');
      const handle = await job.created;
      await waitFor(
        () =>
          latest()?.runningJobs?.some((running) => running.handle === handle && running.numerator === 2 && running.denominator === 5) ===
          true,
        'the running job with its progress',
      );
      release.resolve();
      await job.result;
      await waitFor(() => latest()?.functions.find((fn) => fn.name === 'dash.slow')?.running === 0, 'the job to end');
    });

    it('charts throughput from its counts, and serves /metrics when given metrics', async () => {
      const counter = new WorkerJobCounter();
      const metrics = await GearmanMetrics.create({ registry: new Registry() });
      const worker = t.worker({ observer: counter, concurrency: 4 });
      worker.register('dash.work', (job) => {
        if (job.data.toString() === 'bad') throw new Error('bad');
        return 'ok';
      });
      await worker.start();
      const { base } = await start({ throughput: counter, metrics });
      const client = t.client({ observer: metrics.client });
      await Promise.allSettled([
        ...Array.from({ length: 20 }, () => client.submitJob('dash.work', 'ok').result),
        client.submitJob('dash.work', 'bad').result,
      ]);
      await waitFor(async () => {
        const state = (await (await fetch(`${base}api/state`)).json()) as DashboardState;
        const points = state.throughput?.points ?? [];
        return points.reduce((sum, point) => sum + point[1], 0) === 20 && points.reduce((sum, point) => sum + point[2], 0) === 1;
      }, 'the chart to hold 20 completed and 1 failed job');
      const state = (await (await fetch(`${base}api/state`)).json()) as DashboardState;
      expect(state.throughput).toMatchObject({ source: "this app's workers", intervalMs: 100, capacity: 600 });

      const scrape = await fetch(`${base}metrics`);
      expect(scrape.status).toBe(200);
      expect(scrape.headers.get('content-type')).toContain('text/plain');
      expect(await scrape.text()).toContain('gearman_client_replies_total{function="dash.work",mode="foreground"} 20');
    });

    it('is read-only by default: actions answer 403 and change nothing', async () => {
      const handle = await t.client().submitBackgroundJob('dash.keep', 'x');
      const { base } = await start();
      const path = `${base}api/servers/${encodeURIComponent(t.server.address)}/jobs/${encodeURIComponent(handle)}/cancel`;
      const response = await fetch(path, { method: 'POST', headers: { 'X-Gearman-Dashboard': '1' } });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ error: 'actions are off: this dashboard is read-only' });
      const admin = await GearmanAdminClient.connect(t.server.address);
      try {
        expect((await admin.jobs()).map((job) => job.handle)).toEqual([handle]);
      } finally {
        admin.close();
      }
    });

    it('with actions: cancels a job through the admin protocol; refuses requests without its header and other servers', async () => {
      const client = t.client();
      const handle = await client.submitBackgroundJob('dash.cancel', 'x');
      const { base } = await start({ actions: true });
      const server = encodeURIComponent(t.server.address);
      const cancel = `${base}api/servers/${server}/jobs/${encodeURIComponent(handle)}/cancel`;

      expect((await fetch(cancel, { method: 'POST' })).status).toBe(403);
      const elsewhere = `${base}api/servers/${encodeURIComponent('10.0.0.1:4730')}/jobs/${encodeURIComponent(handle)}/cancel`;
      expect((await fetch(elsewhere, { method: 'POST', headers: { 'X-Gearman-Dashboard': '1' } })).status).toBe(404);

      const done = await fetch(cancel, { method: 'POST', headers: { 'X-Gearman-Dashboard': '1' } });
      expect(done.status).toBe(200);
      const admin = await GearmanAdminClient.connect(t.server.address);
      try {
        expect((await admin.jobs()).filter((job) => !job.ignored)).toEqual([]);
      } finally {
        admin.close();
      }
      const unknown = await fetch(`${base}api/servers/${server}/jobs/${encodeURIComponent('H:nowhere:99999')}/cancel`, {
        method: 'POST',
        headers: { 'X-Gearman-Dashboard': '1' },
      });
      expect(unknown.status).toBe(409);
      expect(await unknown.json()).toEqual({ error: `${t.server.address} answered UNKNOWN_JOB` });
      const bad = await fetch(`${base}api/servers/${server}/functions/${encodeURIComponent('two words')}/pause`, {
        method: 'POST',
        headers: { 'X-Gearman-Dashboard': '1' },
      });
      expect(bad.status).toBe(400);
    });

    it('refuses more watchers than it takes, and closes their streams when it closes', async () => {
      const { dashboard, base } = await start({ maxWatchers: 1 });
      const first = follow(base);
      t.defer(async () => first.stop());
      expect(await first.status).toBe(200);
      expect((await fetch(`${base}api/events`)).status).toBe(503);
      await dashboard.close();
      await dashboard.close();
    });
  });
}

describe('GearmanDashboard actions on our job server', () => {
  const [ours] = JOB_SERVER_KINDS.filter((kind) => kind.name === 'GearmanJobServer');
  const t = useJobServer(ours);

  it('pauses and resumes a function; the state lists it as paused meanwhile', async () => {
    const dashboard = new GearmanDashboard({ servers: [t.server.address], actions: true, intervalMs: 100, logger: quiet });
    await dashboard.listen();
    t.defer(() => dashboard.close());
    const base = `http://127.0.0.1:${dashboard.address().port}/`;
    const action = (verb: string) =>
      fetch(`${base}api/servers/${encodeURIComponent(t.server.address)}/functions/resize/${verb}`, {
        method: 'POST',
        headers: { 'X-Gearman-Dashboard': '1' },
      });
    const paused = async () => ((await (await fetch(`${base}api/state`)).json()) as DashboardState).servers[0].paused;
    expect(await paused()).toEqual([]);
    expect((await action('pause')).status).toBe(200);
    await waitFor(async () => (await paused())?.join() === 'resize', 'resize to show as paused');
    expect((await action('resume')).status).toBe(200);
    await waitFor(async () => (await paused())?.length === 0, 'resize to show as running again');
  });
});

describeWithPeers(['gearmand'], 'GearmanDashboard actions on gearmand', () => {
  const [gearmand] = JOB_SERVER_KINDS.filter((kind) => kind.name === 'gearmand');
  const t = useJobServer(gearmand);

  it('pausing a function is not something gearmand does: 501, saying so', async () => {
    const dashboard = new GearmanDashboard({ servers: [t.server.address], actions: true, logger: quiet });
    await dashboard.listen();
    t.defer(() => dashboard.close());
    const path = `http://127.0.0.1:${dashboard.address().port}/api/servers/${encodeURIComponent(t.server.address)}/functions/resize/pause`;
    const response = await fetch(path, { method: 'POST', headers: { 'X-Gearman-Dashboard': '1' } });
    expect(response.status).toBe(501);
    expect(await response.json()).toEqual({ error: `${t.server.address} does not support pause` });
  });
});

describe('GearmanDashboard without a job server', () => {
  it('shows the server as unreachable', async () => {
    const port = await freePort();
    const dashboard = new GearmanDashboard({ servers: [`127.0.0.1:${port}`], timeoutMs: 500, logger: quiet });
    await dashboard.listen();
    try {
      const state = (await (await fetch(`http://127.0.0.1:${dashboard.address().port}/api/state`)).json()) as DashboardState;
      expect(state.servers).toEqual([expect.objectContaining({ server: `127.0.0.1:${port}`, reachable: false })]);
    } finally {
      await dashboard.close();
    }
  });

  it('refuses an interval below 100 ms', () => {
    expect(() => new GearmanDashboard({ servers: [], intervalMs: 10 })).toThrow(TypeError);
  });
});
