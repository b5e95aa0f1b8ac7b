import { describeWithPeers } from '../support/gearmand.js';
import { CountingProxy } from './support/counting-proxy.js';
import { submitFromOutside } from './support/outside-client.js';
import { useJobServer } from './support/harness.js';
import { JOB_SERVER_KINDS } from './support/job-servers.js';
import { waitFor } from './support/wait.js';

/** What the client and worker put on the wire, read back through a proxy (one connection each). */
for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `packets on the wire, on ${kind.name}`, () => {
    const t = useJobServer(kind);

    test('the client asks for exceptions first, then sends each submit as its priority packet', async () => {
      const proxy = await CountingProxy.start(t.server.port);
      t.defer(() => proxy.close());
      const client = t.client({ servers: [proxy.address], clientId: 'wire-client' });
      await client.submitBackgroundJob('f', 'a', { priority: 'high' });
      await client.submitBackgroundJob('f', 'b');
      await client.submitBackgroundJob('f', 'c', { priority: 'low' });
      await client.submitBackgroundJob('f', 'd', { runAt: Math.floor(Date.now() / 1000) + 3600 });
      await Promise.all(
        ['high', 'normal', 'low'].map((priority) => client.submitJob('f', priority, { priority: priority as 'high' }).created),
      );
      await client.getStatus('H:x:1');
      await client.getStatusUnique('u');
      await client.echo('e');
      expect(proxy.packetsToServer()).toEqual([
        'OPTION_REQ',
        'SET_CLIENT_ID',
        'SUBMIT_JOB_HIGH_BG',
        'SUBMIT_JOB_BG',
        'SUBMIT_JOB_LOW_BG',
        'SUBMIT_JOB_EPOCH',
        'SUBMIT_JOB_HIGH',
        'SUBMIT_JOB',
        'SUBMIT_JOB_LOW',
        'GET_STATUS',
        'GET_STATUS_UNIQUE',
        'ECHO_REQ',
      ]);
    });

    test('the worker names itself, registers, grabs, sleeps; woken, it grabs and sleeps in one write, then only completes', async () => {
      const proxy = await CountingProxy.start(t.server.port);
      t.defer(() => proxy.close());
      const worker = t.worker({ servers: [proxy.address], clientId: 'wire-worker' });
      worker.register('plain', (job) => job.data);
      worker.register('timed', (job) => job.data, { timeoutMs: 3000 });
      await worker.start();
      await waitFor(() => proxy.packetsToServer().includes('PRE_SLEEP'), 'PRE_SLEEP');
      expect(proxy.packetsToServer()).toEqual(['SET_CLIENT_ID', 'CAN_DO', 'CAN_DO_TIMEOUT', 'GRAB_JOB_UNIQ', 'PRE_SLEEP']);

      // Submitted as from another process: a job a client of this process waits for would lend the worker a slot.
      await submitFromOutside(t.server.port, 'plain', ['x']);
      await waitFor(() => proxy.packetsToServer().includes('WORK_COMPLETE'), 'WORK_COMPLETE');
      // Asleep again since the PRE_SLEEP that followed the grab: the next job's NOOP will wake it.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(proxy.packetsToServer().slice(5)).toEqual(['GRAB_JOB_UNIQ', 'PRE_SLEEP', 'WORK_COMPLETE']);

      await submitFromOutside(t.server.port, 'plain', ['y']);
      await waitFor(() => proxy.packetsToServer().length === 11, 'the second job');
      expect(proxy.packetsToServer().slice(8)).toEqual(['GRAB_JOB_UNIQ', 'PRE_SLEEP', 'WORK_COMPLETE']);
    });
  });
}
