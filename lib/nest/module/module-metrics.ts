import type { ServerAddress } from '../../connection/server-address.js';
import type { GearmanJobServer } from '../../job-server/gearman-job-server.js';
import { GearmanMetrics } from '../../metrics/gearman-metrics.js';
import type { GearmanModuleOptions } from './gearman-module-options.js';

/** The module's metrics, when asked for: prom-client is loaded here, so a missing package fails start-up naming it. */
export async function createModuleMetrics(
  options: GearmanModuleOptions,
  servers: ServerAddress[],
  embedded: GearmanJobServer | null,
): Promise<GearmanMetrics | null> {
  if (!options.metrics) return null;
  const { jobServers, ...metricsOptions } = options.metrics === true ? {} : options.metrics;
  const watched = jobServers === true ? servers : jobServers === false ? [] : (jobServers ?? (embedded ? servers : []));
  return GearmanMetrics.create({ ...metricsOptions, jobServers: watched });
}
