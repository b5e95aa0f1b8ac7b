import { Registry } from 'prom-client';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanConnectionError } from '../../lib/common/errors.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { GearmanMetrics } from '../../lib/metrics/gearman-metrics.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { useJobServer } from '../client/support/harness.js';
import { JOB_SERVER_KINDS } from '../client/support/job-servers.js';
import { waitFor } from '../client/support/wait.js';
import { describeWithPeers } from '../support/gearmand.js';
import { parsePrometheusText, sampleValue, type Sample } from '../support/prometheus-text.js';

const FAILING = new Set([7, 42, 99]);

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `GearmanMetrics on ${kind.name}`, () => {
    const t = useJobServer(kind);

    async function scrape(metrics: GearmanMetrics): Promise<Sample[]> {
      const text = await metrics.metrics();
      expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
      return parsePrometheusText(text);
    }

    it('after exactly 100 jobs with 3 failures, the client and worker metrics say so', async () => {
      const metrics = await GearmanMetrics.create({ registry: new Registry(), jobServers: [t.server.address] });
      const worker = t.worker({ observer: metrics.worker, concurrency: 4 });
      worker.register('metrics.work', (job) => {
        const n = Number(job.data.toString());
        if (FAILING.has(n)) throw new Error(`job ${n} fails`);
        return `done ${n}`;
      });
      await worker.start();
      const client = t.client({ observer: metrics.client });
      const outcomes = await Promise.allSettled(Array.from({ length: 100 }, (_, n) => client.submitJob('metrics.work', String(n)).result));
      expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toHaveLength(3);
      // Background jobs nobody serves: they stay queued, by priority.
      await client.submitBackgroundJob('metrics.later', 'a', { priority: 'high' });
      await client.submitBackgroundJob('metrics.later', 'b');
      await client.submitBackgroundJob('metrics.later', 'c');

      const samples = await scrape(metrics);
      const fg = { function: 'metrics.work', mode: 'foreground' };
      expect(sampleValue(samples, 'gearman_client_jobs_submitted_total', fg)).toBe(100);
      expect(sampleValue(samples, 'gearman_client_replies_total', fg)).toBe(97);
      expect(sampleValue(samples, 'gearman_client_failures_total', { ...fg, reason: 'exception' })).toBe(3);
      expect(sampleValue(samples, 'gearman_client_job_duration_seconds_count', fg)).toBe(100);
      expect(sampleValue(samples, 'gearman_client_job_duration_seconds_bucket', { ...fg, le: '+Inf' })).toBe(100);
      expect(sampleValue(samples, 'gearman_client_job_duration_seconds_sum', fg)).toBeGreaterThan(0);
      const bg = { function: 'metrics.later', mode: 'background' };
      expect(sampleValue(samples, 'gearman_client_jobs_submitted_total', bg)).toBe(3);
      expect(sampleValue(samples, 'gearman_client_replies_total', bg)).toBe(3);

      const fn = { function: 'metrics.work' };
      expect(sampleValue(samples, 'gearman_worker_jobs_total', fn)).toBe(100);
      expect(sampleValue(samples, 'gearman_worker_jobs_in_flight', fn)).toBe(0);
      expect(sampleValue(samples, 'gearman_worker_failures_total', { ...fn, reason: 'exception' })).toBe(3);
      expect(sampleValue(samples, 'gearman_worker_job_duration_seconds_count', { ...fn, outcome: 'completed' })).toBe(97);
      expect(sampleValue(samples, 'gearman_worker_job_duration_seconds_count', { ...fn, outcome: 'exception' })).toBe(3);
      expect(sampleValue(samples, 'gearman_worker_timeouts_total', fn)).toBeUndefined();

      const server = { server: t.server.address };
      expect(sampleValue(samples, 'gearman_server_up', server)).toBe(1);
      expect(sampleValue(samples, 'gearman_server_echo_seconds', server)).toBeGreaterThanOrEqual(0);
      expect(sampleValue(samples, 'gearman_server_connections', server)).toBeGreaterThanOrEqual(3);
      expect(sampleValue(samples, 'gearman_server_workers', { ...server, function: 'metrics.work' })).toBe(1);
      expect(sampleValue(samples, 'gearman_server_jobs_running', { ...server, function: 'metrics.work' })).toBe(0);
      const later = { ...server, function: 'metrics.later' };
      expect(sampleValue(samples, 'gearman_server_jobs_queued', { ...later, priority: 'high' })).toBe(1);
      expect(sampleValue(samples, 'gearman_server_jobs_queued', { ...later, priority: 'normal' })).toBe(2);
      expect(sampleValue(samples, 'gearman_server_jobs_queued', { ...later, priority: 'low' })).toBe(0);
      expect(sampleValue(samples, 'gearman_server_workers', later)).toBe(0);
    });

    it('a job in flight shows in the gauge; a job the worker ends at its timeout is a timeout, not a failure', async () => {
      const metrics = await GearmanMetrics.create({ registry: new Registry() });
      const worker = t.worker({ observer: metrics.worker });
      let started = false;
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      worker.register(
        'metrics.slow',
        async () => {
          started = true;
          await released;
          return 'too late';
        },
        { timeoutMs: 1000 },
      );
      await worker.start();
      const client = t.client({ observer: metrics.client });
      const job = client.submitJob('metrics.slow', 'x');
      await waitFor(() => started, 'the job to start');
      const during = parsePrometheusText(await metrics.metrics());
      expect(sampleValue(during, 'gearman_worker_jobs_in_flight', { function: 'metrics.slow' })).toBe(1);
      // Past 1 s the worker ends the job with the timeout error and frees its slot.
      await expect(job.result).rejects.toMatchObject({ code: 'JOB_EXCEPTION' });
      release();
      const samples = parsePrometheusText(await metrics.metrics());
      const fn = { function: 'metrics.slow' };
      expect(sampleValue(samples, 'gearman_worker_jobs_in_flight', fn)).toBe(0);
      expect(sampleValue(samples, 'gearman_worker_timeouts_total', fn)).toBe(1);
      expect(sampleValue(samples, 'gearman_worker_jobs_total', fn)).toBe(1);
      expect(sampleValue(samples, 'gearman_worker_job_duration_seconds_count', { ...fn, outcome: 'timeout' })).toBe(1);
      expect(sampleValue(samples, 'gearman_worker_failures_total', { ...fn, reason: 'exception' })).toBeUndefined();
      // The client sees a job that failed with an exception.
      expect(sampleValue(samples, 'gearman_client_failures_total', { ...fn, mode: 'foreground', reason: 'exception' })).toBe(1);
    });

    it('an unreachable job server is gearman_server_up 0; a connection lost mid-job is a client failure', async () => {
      const metrics = await GearmanMetrics.create({ registry: new Registry(), jobServers: [t.server.address] });
      const worker = t.worker();
      let started = false;
      worker.register('metrics.hang', () => {
        started = true;
        return new Promise(() => undefined);
      });
      await worker.start();
      const client = t.client({ observer: metrics.client, reconnect: { maxAttempts: 0 } });
      const job = client.submitJob('metrics.hang', 'x');
      await waitFor(() => started, 'the job to start');
      await t.server.stop();
      await expect(job.result).rejects.toBeInstanceOf(GearmanConnectionError);
      // A second scrape a second later reads the server again.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const samples = parsePrometheusText(await metrics.metrics());
      expect(sampleValue(samples, 'gearman_server_up', { server: t.server.address })).toBe(0);
      expect(sampleValue(samples, 'gearman_client_failures_total', { function: 'metrics.hang', reason: 'connection' })).toBe(1);
      await t.server.start();
    });
  });
}

describe('GearmanMetrics and registries', () => {
  it('two instances on one registry share its metrics instead of failing to register twice', async () => {
    const registry = new Registry();
    const first = await GearmanMetrics.create({ registry });
    const second = await GearmanMetrics.create({ registry });
    first.client.jobSubmitted('shared', false);
    second.client.jobSubmitted('shared', false);
    const samples = parsePrometheusText(await registry.metrics());
    expect(sampleValue(samples, 'gearman_client_jobs_submitted_total', { function: 'shared' })).toBe(2);
    expect(first.registry).toBe(registry);
  });
});

describe('GearmanMetrics of a job server in this process (its lifecycle and traffic)', () => {
  it('counts the jobs the server accepted, completed and failed, the requeues, and the bytes, after a known load', async () => {
    const metrics = await GearmanMetrics.create({ registry: new Registry() });
    const server = new GearmanJobServer({ port: 0, logger: false, lifecycle: metrics.jobServerLifecycle() });
    await server.listen();
    metrics.watchJobServer(server);
    const address = `127.0.0.1:${server.address().port}`;
    const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
    const worker = new GearmanWorker({ servers: [address], concurrency: 4, logger: quiet });
    const client = new GearmanClient({ servers: [address], logger: quiet });
    try {
      worker.register('server.work', (job) => {
        if (FAILING.has(Number(job.data.toString()))) throw new Error('fails');
        return 'ok';
      });
      await worker.start();
      await Promise.allSettled(Array.from({ length: 100 }, (_, n) => client.submitJob('server.work', String(n)).result));
      await client.submitBackgroundJob('server.later', 'x');
      // A worker lost mid-job: the job goes back to the queue (worker_gone).
      const lost = new GearmanWorker({ servers: [address], logger: quiet, stopTimeoutMs: 0 });
      let taken = false;
      lost.register('server.lost', () => {
        taken = true;
        return new Promise(() => undefined);
      });
      await lost.start();
      await client.submitBackgroundJob('server.lost', 'y');
      await waitFor(() => taken, 'the job to be taken');
      await lost.stop();

      let samples: Sample[] = [];
      await waitFor(async () => {
        samples = parsePrometheusText(await metrics.metrics());
        return sampleValue(samples, 'gearman_server_jobs_requeued_total', { function: 'server.lost', reason: 'worker_gone' }) === 1;
      }, 'the requeue to be counted');
      const fn = { function: 'server.work' };
      expect(sampleValue(samples, 'gearman_server_jobs_accepted_total', { ...fn, mode: 'foreground' })).toBe(100);
      expect(sampleValue(samples, 'gearman_server_jobs_completed_total', fn)).toBe(97);
      expect(sampleValue(samples, 'gearman_server_jobs_failed_total', { ...fn, reason: 'exception' })).toBe(3);
      expect(sampleValue(samples, 'gearman_server_jobs_accepted_total', { function: 'server.later', mode: 'background' })).toBe(1);
      expect(metrics.jobServerTotals()).toEqual({ completed: 97, failed: 3 });
      expect(sampleValue(samples, 'gearman_server_received_bytes_total')).toBeGreaterThan(100 * 12);
      expect(sampleValue(samples, 'gearman_server_sent_bytes_total')).toBeGreaterThan(100 * 12);
      // watchJobServer also reads the server's admin protocol, as for `jobServers`.
      expect(sampleValue(samples, 'gearman_server_jobs_queued', { server: address, function: 'server.later', priority: 'normal' })).toBe(1);
      const stats = server.stats();
      expect(stats.connections).toBeGreaterThanOrEqual(2);
    } finally {
      await client.close();
      await worker.stop();
      await server.close();
    }
  });

  it('reports the outcomes the server keeps, their bytes and the batches it runs, read at each scrape', async () => {
    const metrics = await GearmanMetrics.create({ registry: new Registry() });
    const server = new GearmanJobServer({ port: 0, logger: false });
    await server.listen();
    metrics.watchJobServer(server);
    const address = `127.0.0.1:${server.address().port}`;
    const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
    const worker = new GearmanWorker({ servers: [address], logger: quiet });
    const client = new GearmanClient({ servers: [address], logger: quiet });
    const scrape = async () => {
      const samples = parsePrometheusText(await metrics.metrics());
      return {
        stored: sampleValue(samples, 'gearman_server_results_stored'),
        bytes: sampleValue(samples, 'gearman_server_results_bytes'),
        batches: sampleValue(samples, 'gearman_server_batches_running'),
      };
    };
    try {
      expect(await scrape()).toEqual({ stored: 0, bytes: 0, batches: 0 });
      worker.register('kept.echo', (job) => job.data);
      await worker.start();
      await client.connect();
      for (let n = 0; n < 3; n++) {
        const { handle } = await client.submitBackground('kept.echo', 'x'.repeat(1000));
        await client.waitForResult(handle, { timeoutMs: 5000 });
      }
      // Nobody serves its function: the batch runs until it is cancelled.
      const batch = await client.submitBatch({ function: 'kept.nobody', failFast: true }, [Buffer.from('1'), Buffer.from('2')]);
      const running = await scrape();
      expect(running).toMatchObject({ stored: 3, batches: 1 });
      expect(running.bytes).toBeGreaterThan(3 * 1000);
      expect(await client.cancelBatch(batch.handle)).toBe(true);
      // The cancelled batch's outcome is kept too.
      expect(await scrape()).toMatchObject({ stored: 4, batches: 0 });
    } finally {
      await client.close();
      await worker.stop();
      await server.close();
    }
  });
});
