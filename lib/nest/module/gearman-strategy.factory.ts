import { Inject, Injectable } from '@nestjs/common';
import type { ServerAddress } from '../../connection/server-address.js';
import { ClientGearman } from '../client-gearman.js';
import { ServerGearman, type GearmanServerOptions } from '../server-gearman.js';
import type { GearmanWorkerObserver } from '../../worker/worker-observer.js';
import { GEARMAN_MODULE_OPTIONS, GEARMAN_SERVERS, GEARMAN_WORKER_OBSERVER } from './gearman.constants.js';
import type { GearmanModuleOptions } from './gearman-module-options.js';

/**
 * Makes `ServerGearman` strategies that connect where this app's `ClientGearman` connects (the
 * embedded server included), with the module's `worker` defaults. `GearmanModule.microservice()`
 * uses it; inject it to build a strategy by hand.
 */
@Injectable()
export class GearmanStrategyFactory {
  private readonly made = new Set<ServerGearman>();

  constructor(
    @Inject(GEARMAN_SERVERS) private readonly servers: ServerAddress[],
    @Inject(GEARMAN_MODULE_OPTIONS) private readonly options: GearmanModuleOptions,
    @Inject(GEARMAN_WORKER_OBSERVER) private readonly observer: GearmanWorkerObserver | null,
    // The app's client: handlers split their jobs with it (ctx.sendBatch / ctx.emitBatch).
    @Inject(ClientGearman) private readonly client: ClientGearman,
  ) {}

  /** A new strategy; `options` override the module's `worker` defaults (and, if given, its servers). */
  create(options: GearmanServerOptions = {}): ServerGearman {
    const observer = this.observer ? { observer: this.observer } : {};
    const strategy = new ServerGearman({
      servers: this.servers,
      resultStore: this.options.resultStore,
      client: this.client,
      ...observer,
      ...this.options.worker,
      ...options,
    });
    this.made.add(strategy);
    return strategy;
  }

  /** The strategies made here: the app's workers, as the health indicator and the dashboard report them. */
  get strategies(): readonly ServerGearman[] {
    return [...this.made];
  }

  /** Counts a strategy built by hand among the app's workers (see `strategies`). */
  track(strategy: ServerGearman): void {
    this.made.add(strategy);
  }
}
