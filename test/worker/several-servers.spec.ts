import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { quietLogger } from '../client/support/harness.js';
import { JOB_SERVER_KINDS, type RunningJobServer } from '../client/support/job-servers.js';
import { describeWithPeers } from '../support/gearmand.js';

/**
 * A worker shares its slots between its job-server connections. One connection's first burst of
 * grabs may take every free slot while another connects; that other one then sends no PRE_SLEEP, so
 * its server never wakes it: it must grab again once the burst is answered. Jobs queued on one
 * server only show it (on both, a job ending elsewhere would free it by chance).
 */
for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `GearmanWorker on two job servers (${kind.name})`, () => {
    let servers: RunningJobServer[] = [];
    afterEach(async () => {
      for (const server of servers.splice(0)) await server.stop();
    });

    test.each([0, 1])('runs the jobs queued on server %i only', async (target) => {
      servers = [await kind.launch(), await kind.launch()];
      const addresses = servers.map((server) => server.address);
      const ran: string[] = [];
      const worker = new GearmanWorker({ servers: addresses, concurrency: 16, logger: quietLogger, stopTimeoutMs: 500 });
      worker.register('each', (job) => void ran.push(job.data.toString()));
      await worker.start();
      // Both connected, and their first grabs answered: the worker now waits for its servers' NOOPs.
      const connected = Date.now() + 5000;
      while (worker.connectedServers.length < 2 && Date.now() < connected) await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const client = new GearmanClient({ servers: [addresses[target]], logger: quietLogger });
      try {
        for (let job = 0; job < 3; job++) await client.submitBackgroundJob('each', String(job));
        const deadline = Date.now() + 5000;
        while (ran.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        expect([...ran].sort()).toEqual(['0', '1', '2']);
      } finally {
        await client.close();
        await worker.stop();
      }
    });
  });
}
