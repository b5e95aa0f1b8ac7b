import { Logger } from '@nestjs/common';
import { DEFAULT_GEARMAN_HOST, DEFAULT_GEARMAN_PORT } from '../../common/defaults.js';
import { GearmanJobServer, type GearmanJobServerOptions } from '../../job-server/gearman-job-server.js';
import { combineLifecycles } from '../../job-server/job-lifecycle.js';
import type { GearmanMetrics } from '../../metrics/gearman-metrics.js';
import type { GearmanModuleOptions } from './gearman-module-options.js';

/**
 * Starts the embedded job server, if the options ask for one, and resolves once it listens. It runs
 * as an async provider, so Nest creates nothing that depends on it (the client, the strategy
 * factory) before the port is bound.
 */
export async function startEmbeddedJobServer(
  options: Pick<GearmanModuleOptions, 'embeddedServer' | 'metrics'>,
  metrics: GearmanMetrics | null = null,
): Promise<GearmanJobServer | null> {
  if (!options.embeddedServer) return null;
  const serverOptions: GearmanJobServerOptions = options.embeddedServer === true ? {} : options.embeddedServer;
  // With metrics, the server's jobs are counted through its lifecycle, beside any lifecycle of the options' own.
  const counted = metrics?.jobServerLifecycle();
  const lifecycle =
    counted && serverOptions.lifecycle ? combineLifecycles(serverOptions.lifecycle, counted) : (counted ?? serverOptions.lifecycle);
  const server = new GearmanJobServer({ logger: new Logger('GearmanJobServer'), ...serverOptions, lifecycle });
  try {
    await server.listen();
  } catch (error) {
    throw listenError(serverOptions, error);
  }
  const metricsOptions = options.metrics === true ? {} : options.metrics;
  if (metrics && metricsOptions && metricsOptions.jobServers !== false) metrics.watchJobServer(server);
  return server;
}

function listenError(options: GearmanJobServerOptions, error: unknown): Error {
  const where = `${options.host ?? DEFAULT_GEARMAN_HOST}:${options.port ?? DEFAULT_GEARMAN_PORT}`;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason = error instanceof Error ? error.message : String(error);
  const hint =
    code === 'EADDRINUSE'
      ? ' Another job server (gearmand?) already listens there: connect to it with `servers` instead of `embeddedServer`, or give `embeddedServer` another port (0 = any free port).'
      : '';
  return new Error(`The embedded Gearman job server could not listen on ${where}: ${reason}.${hint}`, { cause: error });
}
