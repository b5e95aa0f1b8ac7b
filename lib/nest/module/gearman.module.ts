import { Inject, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { ServerAddress } from '../../connection/server-address.js';
import type { GearmanJobServer } from '../../job-server/gearman-job-server.js';
import { ClientGearman } from '../client-gearman.js';
import type { GearmanServerOptions, ServerGearman } from '../server-gearman.js';
import { closeClientGracefully } from './close-client-gracefully.js';
import { startEmbeddedJobServer } from './embedded-job-server.js';
import { GearmanMetrics } from '../../metrics/gearman-metrics.js';
import type { GearmanDashboard } from '../../dashboard/gearman-dashboard.js';
import {
  GEARMAN_CLIENT,
  GEARMAN_DASHBOARD,
  GEARMAN_JOB_SERVER,
  GEARMAN_METRICS,
  GEARMAN_MODULE_OPTIONS,
  GEARMAN_SERVERS,
  GEARMAN_WORKER_OBSERVER,
} from './gearman.constants.js';
import type { GearmanModuleAsyncOptions, GearmanModuleOptions, GearmanOptionsFactory } from './gearman-module-options.js';
import { GearmanHealthIndicator } from './gearman-health.indicator.js';
import { GearmanStrategyFactory } from './gearman-strategy.factory.js';
import { jobServerAddresses } from './job-server-addresses.js';
import { moduleWorkerObserver, startModuleDashboard } from './module-dashboard.js';
import { createModuleMetrics } from './module-metrics.js';

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/** What `GearmanModule.microservice()` returns: Nest's `{ inject, useFactory }` microservice options. */
export interface GearmanMicroserviceOptions {
  inject: [typeof GearmanStrategyFactory];
  useFactory: (factory: GearmanStrategyFactory) => { strategy: ServerGearman };
}

/**
 * Gearman for a Nest app: an injectable `ClientGearman`, an optional embedded job server, and
 * `GearmanModule.microservice()` for the `ServerGearman` strategy, all sharing one set of servers.
 *
 * Start-up: the embedded server listens while Nest resolves providers, before anything can connect.
 * Shutdown (`app.close()`, or a signal with `enableShutdownHooks()`): Nest first closes the app's
 * microservices (their workers finish the jobs in flight), then this module closes the client once
 * its replies have arrived, and only then stops the embedded server.
 */
@Module({})
export class GearmanModule implements OnApplicationShutdown {
  constructor(
    @Inject(GEARMAN_CLIENT) private readonly client: ClientGearman,
    @Inject(GEARMAN_JOB_SERVER) private readonly jobServer: GearmanJobServer | null,
    @Inject(GEARMAN_MODULE_OPTIONS) private readonly options: GearmanModuleOptions,
    @Inject(GEARMAN_DASHBOARD) private readonly dashboard: GearmanDashboard | null,
  ) {}

  static forRoot(options: GearmanModuleOptions = {}): DynamicModule {
    const { isGlobal, ...moduleOptions } = options;
    return GearmanModule.assemble([{ provide: GEARMAN_MODULE_OPTIONS, useValue: moduleOptions }], [], isGlobal);
  }

  static forRootAsync(options: GearmanModuleAsyncOptions): DynamicModule {
    return GearmanModule.assemble(asyncOptionsProviders(options), options.imports ?? [], options.isGlobal);
  }

  /**
   * Microservice options that give the app a `ServerGearman` connected like its `ClientGearman`:
   * `app.connectMicroservice(GearmanModule.microservice())` in a hybrid app, or
   * `NestFactory.createMicroservice(AppModule, GearmanModule.microservice())`.
   */
  static microservice(options: GearmanServerOptions = {}): GearmanMicroserviceOptions {
    return {
      inject: [GearmanStrategyFactory],
      useFactory: (factory) => ({ strategy: factory.create(options) }),
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.dashboard?.close();
    await closeClientGracefully(this.client, this.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
    await this.options.resultStore?.close();
    await this.jobServer?.close();
  }

  private static assemble(optionsProviders: Provider[], imports: DynamicModule['imports'], isGlobal?: boolean): DynamicModule {
    const providers: Provider[] = [
      ...optionsProviders,
      { provide: GEARMAN_METRICS, useFactory: createModuleMetrics, inject: [GEARMAN_MODULE_OPTIONS] },
      {
        provide: GEARMAN_JOB_SERVER,
        useFactory: (options: GearmanModuleOptions, metrics: GearmanMetrics | null) => startEmbeddedJobServer(options, metrics),
        inject: [GEARMAN_MODULE_OPTIONS, GEARMAN_METRICS],
      },
      {
        provide: GEARMAN_SERVERS,
        useFactory: (options: GearmanModuleOptions, jobServer: GearmanJobServer | null) => jobServerAddresses(options.servers, jobServer),
        inject: [GEARMAN_MODULE_OPTIONS, GEARMAN_JOB_SERVER],
      },
      { provide: GearmanMetrics, useExisting: GEARMAN_METRICS },
      { provide: GEARMAN_WORKER_OBSERVER, useFactory: moduleWorkerObserver, inject: [GEARMAN_MODULE_OPTIONS, GEARMAN_METRICS] },
      {
        provide: GEARMAN_DASHBOARD,
        useFactory: startModuleDashboard,
        inject: [GEARMAN_MODULE_OPTIONS, GEARMAN_SERVERS, GEARMAN_METRICS, GEARMAN_WORKER_OBSERVER, GearmanStrategyFactory],
      },
      {
        provide: ClientGearman,
        useFactory: (options: GearmanModuleOptions, servers: ServerAddress[], metrics: GearmanMetrics | null) =>
          new ClientGearman({
            resultStore: options.resultStore,
            ...(metrics ? { observer: metrics.client } : {}),
            ...options.client,
            servers,
          }),
        inject: [GEARMAN_MODULE_OPTIONS, GEARMAN_SERVERS, GEARMAN_METRICS],
      },
      { provide: GEARMAN_CLIENT, useExisting: ClientGearman },
      GearmanStrategyFactory,
      GearmanHealthIndicator,
    ];
    return {
      module: GearmanModule,
      global: isGlobal ?? false,
      imports,
      providers,
      exports: [
        ClientGearman,
        GEARMAN_CLIENT,
        GEARMAN_JOB_SERVER,
        GEARMAN_SERVERS,
        GEARMAN_MODULE_OPTIONS,
        GearmanStrategyFactory,
        GearmanHealthIndicator,
        GEARMAN_METRICS,
        GearmanMetrics,
        GEARMAN_DASHBOARD,
      ],
    };
  }
}

function asyncOptionsProviders(options: GearmanModuleAsyncOptions): Provider[] {
  const ways = [options.useFactory, options.useClass, options.useExisting].filter((way) => way !== undefined);
  if (ways.length !== 1) {
    throw new TypeError('GearmanModule.forRootAsync() needs exactly one of useFactory, useClass or useExisting');
  }
  if (options.useFactory) {
    return [{ provide: GEARMAN_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
  }
  const factoryClass = (options.useClass ?? options.useExisting)!;
  const fromFactory: Provider = {
    provide: GEARMAN_MODULE_OPTIONS,
    useFactory: (factory: GearmanOptionsFactory) => factory.createGearmanOptions(),
    inject: [factoryClass],
  };
  return options.useClass ? [fromFactory, { provide: options.useClass, useClass: options.useClass }] : [fromFactory];
}
