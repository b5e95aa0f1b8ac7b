import { GearmanClient, type GearmanClientOptions } from '../../../lib/client/gearman-client.js';
import { GearmanWorker, type GearmanWorkerOptions } from '../../../lib/worker/gearman-worker.js';
import type { JobServerKind, RunningJobServer } from './job-servers.js';

const quietLogger = { log: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/**
 * Per test: a fresh job server, and clients and workers that are all closed afterwards.
 * Call inside a describe block.
 */
export function useJobServer(kind: JobServerKind) {
  const opened: { close(): Promise<void> }[] = [];
  const harness = {
    server: undefined as unknown as RunningJobServer,
    client(options: GearmanClientOptions = {}): GearmanClient {
      const client = new GearmanClient({ servers: [harness.server.address], logger: quietLogger, ...options });
      opened.push(client);
      return client;
    },
    worker(options: GearmanWorkerOptions = {}): GearmanWorker {
      const worker = new GearmanWorker({ servers: [harness.server.address], logger: quietLogger, stopTimeoutMs: 2000, ...options });
      opened.push({ close: () => worker.stop() });
      return worker;
    },
    /** Closes something else at the end of the test. */
    defer(close: () => Promise<void>): void {
      opened.push({ close });
    },
  };
  beforeEach(async () => {
    harness.server = await kind.launch();
  });
  afterEach(async () => {
    const closing = opened.splice(0).reverse();
    for (const item of closing) await item.close();
    await harness.server.stop();
  });
  return harness;
}

export { quietLogger };
