import { BatchCoordinator } from '../../../../lib/job-server/batch-coordinator.js';
import type { JobBroker } from '../../../../lib/job-server/job-broker.js';
import { combineLifecycles } from '../../../../lib/job-server/job-lifecycle.js';
import { JobResults } from '../../../../lib/job-server/job-results.js';
import { ReservedFunctions } from '../../../../lib/job-server/reserved-functions.js';
import { resultRetention, type ResultRetention } from '../../../../lib/job-server/stored-results.js';
import { Core } from './fake-peer.js';

/** A broker with the results side (results, batches, reserved functions) plugged in through its lifecycle, as GearmanJobServer does it. */
export function resultsCore(retention: Partial<ResultRetention> = {}) {
  // The core is made after the lifecycle it calls, which reaches it through this.
  const made: { broker?: JobBroker } = {};
  const broker = () => made.broker!;
  const results = new JobResults(broker, resultRetention(retention));
  const batches = new BatchCoordinator(broker, results);
  results.attachBatches(batches);
  const core = new Core({ lifecycle: combineLifecycles(results, batches) });
  made.broker = core.broker;
  const reserved = new ReservedFunctions(results, batches, 'H:test:');
  return { core, results, batches, reserved };
}
