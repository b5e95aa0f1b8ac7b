import { Logger } from '@nestjs/common';
import type { ServerAddress } from '../../connection/server-address.js';
import { GearmanDashboard } from '../../dashboard/gearman-dashboard.js';
import { WorkerJobCounter } from '../../dashboard/worker-job-counter.js';
import type { GearmanMetrics } from '../../metrics/gearman-metrics.js';
import type { GearmanWorkerObserver } from '../../worker/worker-observer.js';
import { workerState } from './app-workers.js';
import type { GearmanModuleOptions } from './gearman-module-options.js';
import type { GearmanStrategyFactory } from './gearman-strategy.factory.js';

/** What the app's workers report to: the metrics, else with a dashboard a counter for its chart, else nothing. */
export function moduleWorkerObserver(options: GearmanModuleOptions, metrics: GearmanMetrics | null): GearmanWorkerObserver | null {
  if (metrics) return metrics.worker;
  return options.dashboard ? new WorkerJobCounter() : null;
}

/** The module's dashboard, listening, when asked for. */
export async function startModuleDashboard(
  options: GearmanModuleOptions,
  servers: ServerAddress[],
  metrics: GearmanMetrics | null,
  observer: GearmanWorkerObserver | null,
  strategies: GearmanStrategyFactory,
): Promise<GearmanDashboard | null> {
  if (!options.dashboard) return null;
  const { host, port, actions, intervalMs } = options.dashboard === true ? {} : options.dashboard;
  const logger = new Logger('GearmanDashboard');
  const dashboard = new GearmanDashboard({
    servers,
    host,
    port,
    actions,
    intervalMs,
    metrics: metrics ?? undefined,
    throughput: metrics
      ? { label: "this app's workers", read: () => metrics.workerTotals() }
      : observer instanceof WorkerJobCounter
        ? observer
        : undefined,
    appWorkers: () => strategies.strategies.map(workerState),
    logger,
  });
  await dashboard.listen();
  const bound = dashboard.address();
  logger.log(`Gearman dashboard on http://${bound.host}:${bound.port}/`);
  return dashboard;
}
