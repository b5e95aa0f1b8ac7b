import { Inject, Injectable } from '@nestjs/common';
import type { ServerAddress } from '../../connection/server-address.js';
import { ServerGearman, type GearmanServerOptions } from '../server-gearman.js';
import { GEARMAN_MODULE_OPTIONS, GEARMAN_SERVERS } from './gearman.constants.js';
import type { GearmanModuleOptions } from './gearman-module-options.js';

/**
 * Makes `ServerGearman` strategies that connect where this app's `ClientGearman` connects (the
 * embedded server included), with the module's `worker` defaults. `GearmanModule.microservice()`
 * uses it; inject it to build a strategy by hand.
 */
@Injectable()
export class GearmanStrategyFactory {
  constructor(
    @Inject(GEARMAN_SERVERS) private readonly servers: ServerAddress[],
    @Inject(GEARMAN_MODULE_OPTIONS) private readonly options: GearmanModuleOptions,
  ) {}

  /** A new strategy; `options` override the module's `worker` defaults (and, if given, its servers). */
  create(options: GearmanServerOptions = {}): ServerGearman {
    return new ServerGearman({ servers: this.servers, ...this.options.worker, ...options });
  }
}
