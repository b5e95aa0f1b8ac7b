import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GearmanAdminClient } from '../client/admin-client.js';
import { GearmanServerError } from '../common/errors.js';
import { defaultLogger, type GearmanLogger } from '../common/logger.js';
import { resolveServerAddress, type ServerAddress } from '../connection/server-address.js';
import type { GearmanMetrics } from '../metrics/gearman-metrics.js';
import { ASSET_TYPES, loadAssets } from './asset-files.js';
import { DashboardStateSource, type AppWorkerState, type DashboardState, type ThroughputSource } from './dashboard-state.js';

export interface GearmanDashboardOptions {
  /** The job servers to show (gearmand's too). */
  servers: ServerAddress[];
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port (read it back with `address()`). */
  port?: number;
  /** How often the page is updated, and the chart's resolution; default 1000 ms. */
  intervalMs?: number;
  /**
   * Offer actions on the page: cancel a job, pause and resume a function. Default false: the page
   * is read-only and the action routes answer 403. Actions are admin commands sent to the job
   * server like any admin tool's, so the job server's own rules for admin commands apply to them.
   */
  actions?: boolean;
  /** Served at `/metrics` (one HTTP port for metrics and the dashboard); without it `/metrics` is 404. */
  metrics?: GearmanMetrics;
  /** Counts for the throughput chart (e.g. `GearmanMetrics.workerTotals()`); without it there is no chart. */
  throughput?: ThroughputSource;
  /** The workers of the app serving the page, shown in a section of their own. */
  appWorkers?: () => readonly AppWorkerState[];
  /** Per job server and request; default 2000 ms. */
  timeoutMs?: number;
  /** Pages following the state at once; more are refused with 503. Default 100. */
  maxWatchers?: number;
  logger?: GearmanLogger;
}

/** Running jobs listed per job server. */
const RUNNING_JOBS_SHOWN = 50;
/** Ten minutes at the default interval. */
const HISTORY_POINTS = 600;
/** A page's own requests carry this header: a form or a link of another site cannot set it (CSRF). */
const ACTION_HEADER = 'x-gearman-dashboard';
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The live dashboard: a page (no build step, files shipped in the package) showing the job
 * servers, their functions with queued / running / worker counts, throughput over the last
 * minutes, workers and their functions, and running jobs with their progress, updated every
 * interval over server-sent events. It reads the job servers over their admin protocol, so it
 * shows gearmand as well as this package's server. `nestjs-gearman server --http-port` serves it,
 * and so does `GearmanModule` with its `dashboard` option.
 *
 * Routes: `GET /` (the page), `GET /api/state` (JSON), `GET /api/events` (server-sent events,
 * event `state`), `GET /metrics` (with `metrics`), and with `actions` `POST
 * /api/servers/:server/jobs/:handle/cancel`, `POST /api/servers/:server/functions/:name/pause`
 * and `…/resume` (the header `X-Gearman-Dashboard: 1` required).
 */
export class GearmanDashboard {
  private readonly source: DashboardStateSource;
  private readonly assets = loadAssets();
  private readonly servers: Map<string, ServerAddress>;
  private readonly watchers = new Set<ServerResponse>();
  private readonly logger: GearmanLogger;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private server: Server | undefined;
  private broadcaster: NodeJS.Timeout | undefined;
  private bound: { host: string; port: number } | undefined;

  constructor(private readonly options: GearmanDashboardOptions) {
    this.intervalMs = options.intervalMs ?? 1000;
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < 100) {
      throw new TypeError(`intervalMs must be a whole number of ms ≥ 100, got ${options.intervalMs}`);
    }
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.logger = options.logger ?? defaultLogger;
    this.servers = new Map(options.servers.map((server) => [resolveServerAddress(server).label, server]));
    this.source = new DashboardStateSource({
      servers: options.servers,
      intervalMs: this.intervalMs,
      actions: options.actions === true,
      throughput: options.throughput,
      appWorkers: options.appWorkers,
      timeoutMs: this.timeoutMs,
      runningJobs: RUNNING_JOBS_SHOWN,
      historyPoints: HISTORY_POINTS,
      extras: (server) =>
        this.withAdmin(server, async (admin) => {
          const paused = await admin.pausedFunctions().catch(() => undefined);
          const kept = await admin.keptResults().catch(() => undefined);
          // Listed only where this connection may run every admin command (a server of this process).
          const batches = kept && (await admin.runningBatches().catch(() => undefined));
          return { paused, results: kept && (batches ? { ...kept, batches } : kept) };
        }),
    });
  }

  /** Starts serving; resolves once the port is bound. */
  listen(): Promise<void> {
    if (this.server) return Promise.reject(new Error('GearmanDashboard is already listening'));
    const server = createServer((request, response) => this.handle(request, response));
    this.server = server;
    this.source.start();
    return new Promise((resolve, reject) => {
      server.once('error', (error) => {
        this.server = undefined;
        this.source.stop();
        reject(error);
      });
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        const address = server.address();
        if (address && typeof address === 'object') this.bound = { host: address.address, port: address.port };
        resolve();
      });
    });
  }

  /** Where it listens. Throws before listen() has resolved. */
  address(): { host: string; port: number } {
    if (!this.bound) throw new Error('GearmanDashboard is not listening');
    return { ...this.bound };
  }

  /** Ends the event streams and stops listening. Safe twice. */
  async close(): Promise<void> {
    this.source.stop();
    clearInterval(this.broadcaster);
    this.broadcaster = undefined;
    for (const watcher of this.watchers) watcher.end();
    this.watchers.clear();
    const server = this.server;
    this.server = undefined;
    this.bound = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Serves one request: for mounting the dashboard in another HTTP server. */
  handle(request: IncomingMessage, response: ServerResponse): void {
    this.route(request, response).catch((error: unknown) => {
      this.logger.error(`GearmanDashboard: ${request.method} ${request.url}: ${(error as Error).message}`);
      if (!response.headersSent) this.json(response, 500, { error: 'internal error' });
      else response.destroy();
    });
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://dashboard').pathname;
    const method = request.method ?? 'GET';
    const asset = path === '/' ? 'index.html' : path.slice(1);
    if (method === 'POST' && path.startsWith('/api/servers/')) return this.action(request, response, path);
    if (method !== 'GET' && method !== 'HEAD') return this.json(response, 405, { error: `${method} is not allowed here` });
    if (Object.hasOwn(ASSET_TYPES, asset)) {
      response.writeHead(200, {
        'Content-Type': ASSET_TYPES[asset],
        'Content-Security-Policy': CONTENT_SECURITY_POLICY,
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-cache',
      });
      response.end(method === 'HEAD' ? undefined : this.assets.get(asset));
      return;
    }
    // Browsers ask for one; the page has none.
    if (path === '/favicon.ico') {
      response.writeHead(204);
      response.end();
      return;
    }
    if (path === '/api/state') return this.json(response, 200, await this.source.current());
    if (path === '/api/events') return this.watch(response);
    if (path === '/metrics' && this.options.metrics) {
      const text = await this.options.metrics.metrics();
      response.writeHead(200, { 'Content-Type': this.options.metrics.contentType, 'Cache-Control': 'no-store' });
      response.end(text);
      return;
    }
    this.json(response, 404, { error: `nothing at ${path}` });
  }

  /** A page following the state: one `state` event now, then one every interval, while any page watches. */
  private watch(response: ServerResponse): void {
    if (this.watchers.size >= (this.options.maxWatchers ?? 100)) {
      return this.json(response, 503, { error: 'too many pages watch this dashboard' });
    }
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      Connection: 'keep-alive',
    });
    response.write(`retry: ${Math.max(this.intervalMs, 1000)}\n\n`);
    this.watchers.add(response);
    response.on('close', () => {
      this.watchers.delete(response);
      if (this.watchers.size === 0) {
        clearInterval(this.broadcaster);
        this.broadcaster = undefined;
      }
    });
    void this.broadcast([response]);
    this.broadcaster ??= setInterval(() => void this.broadcast([...this.watchers]), this.intervalMs);
  }

  /** Sends the state to pages whose connection keeps up; one that is still behind skips it (the next one replaces it). */
  private async broadcast(watchers: ServerResponse[]): Promise<void> {
    let state: DashboardState;
    try {
      state = await this.source.current();
    } catch (error) {
      this.logger.error(`GearmanDashboard: reading the state failed: ${(error as Error).message}`);
      return;
    }
    const event = `event: state\ndata: ${JSON.stringify(state)}\n\n`;
    for (const watcher of watchers) {
      if (!watcher.writableEnded && !watcher.writableNeedDrain) watcher.write(event);
    }
  }

  private async action(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    if (!this.options.actions) return this.json(response, 403, { error: 'actions are off: this dashboard is read-only' });
    if (request.headers[ACTION_HEADER] !== '1') return this.json(response, 403, { error: `the ${ACTION_HEADER} header is missing` });
    const match = /^\/api\/servers\/([^/]+)\/(jobs|functions)\/([^/]+)\/(cancel|pause|resume)$/.exec(path);
    const kind = match?.[2];
    const verb = match?.[4];
    if (!match || (kind === 'jobs') !== (verb === 'cancel')) return this.json(response, 404, { error: `no action at ${path}` });
    let label: string;
    let target: string;
    try {
      label = decodeURIComponent(match[1]);
      target = decodeURIComponent(match[3]);
    } catch {
      return this.json(response, 400, { error: 'malformed path' });
    }
    const server = this.servers.get(label);
    // Only the job servers this dashboard shows: it is no relay to other hosts.
    if (!server) return this.json(response, 404, { error: `${label} is not a job server of this dashboard` });
    try {
      await this.withAdmin(server, (admin) =>
        verb === 'cancel' ? admin.cancelJob(target) : verb === 'pause' ? admin.pauseFunction(target) : admin.resumeFunction(target),
      );
    } catch (error) {
      if (error instanceof TypeError) return this.json(response, 400, { error: error.message });
      if (error instanceof GearmanServerError) {
        const unsupported = error.code === 'UNKNOWN_COMMAND';
        return this.json(response, unsupported ? 501 : 409, {
          error: unsupported
            ? `${label} does not support ${verb}`
            : `${label} answered ${error.code}${error.text ? `: ${error.text}` : ''}`,
        });
      }
      return this.json(response, 502, { error: (error as Error).message });
    }
    this.logger.log(`GearmanDashboard: ${verb} ${target} on ${label}`);
    this.json(response, 200, { ok: true });
  }

  private async withAdmin<T>(server: ServerAddress, use: (admin: GearmanAdminClient) => Promise<T>): Promise<T> {
    const admin = await GearmanAdminClient.connect(server, { timeoutMs: this.timeoutMs });
    try {
      return await use(admin);
    } finally {
      admin.close();
    }
  }

  private json(response: ServerResponse, status: number, body: unknown): void {
    response.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    response.end(JSON.stringify(body));
  }
}
