import type { AppWorkerState } from '../../dashboard/dashboard-state.js';
import type { GearmanWorker } from '../../worker/gearman-worker.js';
import type { ServerGearman } from '../server-gearman.js';

/** What the health indicator and the dashboard tell of one of the app's `ServerGearman` strategies. */
export function workerState(strategy: ServerGearman): AppWorkerState {
  let worker: GearmanWorker;
  try {
    worker = strategy.unwrap<GearmanWorker>();
  } catch {
    return { listening: false, functions: [], connectedServers: [], jobsInFlight: 0 };
  }
  return { listening: true, functions: worker.functions, connectedServers: worker.connectedServers, jobsInFlight: worker.jobsInFlight };
}
