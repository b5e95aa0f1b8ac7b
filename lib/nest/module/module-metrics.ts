import { GearmanMetrics } from '../../metrics/gearman-metrics.js';
import type { GearmanModuleOptions } from './gearman-module-options.js';

/**
 * The module's metrics, when asked for: prom-client is loaded here, so a missing package fails
 * start-up naming it. `jobServers: true` means the module's `servers`; the embedded server, made
 * after this, is watched by `startEmbeddedJobServer` unless `jobServers` is false.
 */
export async function createModuleMetrics(options: GearmanModuleOptions): Promise<GearmanMetrics | null> {
  if (!options.metrics) return null;
  const { jobServers, ...metricsOptions } = options.metrics === true ? {} : options.metrics;
  const watched = jobServers === true ? (options.servers ?? []) : Array.isArray(jobServers) ? jobServers : [];
  return GearmanMetrics.create({ ...metricsOptions, jobServers: watched });
}
