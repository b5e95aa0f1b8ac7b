import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency, Type } from '@nestjs/common';
import type { ServerAddress } from '../../connection/server-address.js';
import type { GearmanJobServerOptions } from '../../job-server/gearman-job-server.js';
import type { GearmanMetricsOptions } from '../../metrics/gearman-metrics.js';
import type { GearmanResultStore } from '../../results/result-store.js';
import type { GearmanClientProxyOptions } from '../client-gearman.js';
import type { GearmanServerOptions } from '../server-gearman.js';

/** What `GearmanModule.forRoot()` takes, and what a `forRootAsync()` factory returns. */
export interface GearmanModuleOptions {
  /**
   * The job servers the client and the workers of this app connect to. Default: the embedded
   * server when one is started, else `127.0.0.1:4730`.
   */
  servers?: ServerAddress[];
  /**
   * Start a job server inside this app: `true` for the defaults (127.0.0.1:4730), or the
   * `GearmanJobServer` options (`{ port: 0 }` picks a free port). It listens before any provider
   * is created and stops after this app's clients and workers have closed.
   */
  embeddedServer?: boolean | GearmanJobServerOptions;
  /**
   * Where job results are kept for gearmand deployments (gearmand keeps none), e.g.
   * `new RedisResultStore({ redis: 'redis://127.0.0.1:6379' })`: the app's workers write it, its
   * `ClientGearman` reads it. The module closes it on shutdown. Not needed with the embedded server
   * or `nestjs-gearman server`, which keep results themselves.
   */
  resultStore?: GearmanResultStore;
  /** Options of the injectable `ClientGearman` (everything but `servers`). */
  client?: Omit<GearmanClientProxyOptions, 'servers'>;
  /** Defaults for every `ServerGearman` made by `GearmanModule.microservice()` / `GearmanStrategyFactory`. */
  worker?: Omit<GearmanServerOptions, 'servers'>;
  /**
   * On shutdown, how long the client waits for replies still in flight before it closes (they then
   * fail with a connection error); default 10 000 ms.
   */
  shutdownTimeoutMs?: number;
  /**
   * Prometheus metrics (prom-client, an optional peer dependency) of this app's client and workers:
   * `true`, or options. They go to prom-client's default registry unless `registry` says otherwise;
   * inject `GearmanMetrics` (or `GEARMAN_METRICS`) to serve them. `jobServers`: job servers whose
   * admin status becomes `gearman_server_*` gauges (`true`: the module's); default the embedded
   * server's, if any, else none.
   */
  metrics?: boolean | (Omit<GearmanMetricsOptions, 'jobServers'> & { jobServers?: boolean | ServerAddress[] });
  /**
   * Serve the live dashboard (the page `nestjs-gearman server --http-port` serves) on a port of its
   * own, for the module's job servers and this app's workers: `true` (127.0.0.1, any free port),
   * or where and how. Read-only unless `actions`. With `metrics` on, `/metrics` is served there
   * too. Inject `GEARMAN_DASHBOARD` for its `address()`.
   */
  dashboard?: boolean | GearmanModuleDashboardOptions;
  /** Register the module globally, so feature modules inject `ClientGearman` without importing it. */
  isGlobal?: boolean;
}

/** Where and how the module serves its dashboard. */
export interface GearmanModuleDashboardOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Let the page cancel jobs and pause functions; default false. */
  actions?: boolean;
  /** How often the page is updated; default 1000 ms. */
  intervalMs?: number;
}

/** The options a `forRootAsync()` factory may return: `isGlobal` is decided statically, in `forRootAsync()`. */
export type GearmanModuleFactoryOptions = Omit<GearmanModuleOptions, 'isGlobal'>;

/** A class that builds the options, for `forRootAsync({ useClass })` and `forRootAsync({ useExisting })`. */
export interface GearmanOptionsFactory {
  createGearmanOptions(): GearmanModuleFactoryOptions | Promise<GearmanModuleFactoryOptions>;
}

/** What `GearmanModule.forRootAsync()` takes: exactly one of `useFactory`, `useClass`, `useExisting`. */
export interface GearmanModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory?: (...args: any[]) => GearmanModuleFactoryOptions | Promise<GearmanModuleFactoryOptions>;
  /** The providers whose instances `useFactory` receives, in order. */
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  useClass?: Type<GearmanOptionsFactory>;
  useExisting?: Type<GearmanOptionsFactory>;
  isGlobal?: boolean;
}
