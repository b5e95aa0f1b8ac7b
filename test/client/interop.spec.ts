import { GearmanJobFailedError } from '../../lib/common/errors.js';
import { describeWithPeers } from '../support/gearmand.js';
import { useJobServer } from './support/harness.js';
import { JOB_SERVER_KINDS } from './support/job-servers.js';
import { PERL_WORKER, startPeerWorker } from './support/peers.js';

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers([...kind.peers, 'gearman'], `GearmanClient drives the gearman CLI worker on ${kind.name}`, () => {
    const t = useJobServer(kind);

    test('`gearman -w -f reverse -- rev` answers our foreground jobs', async () => {
      const peer = await startPeerWorker(t.server.port, 'reverse', 'gearman', [
        '-h',
        '127.0.0.1',
        '-p',
        String(t.server.port),
        '-w',
        '-f',
        'reverse',
        '--',
        'rev',
      ]);
      t.defer(() => peer.stop());
      const client = t.client();
      const results = await Promise.all(['hello', 'gearman', 'abc def'].map((text) => client.submitJob('reverse', text).result));
      expect(results.map((result) => result.toString().trim())).toEqual(['olleh', 'namraeg', 'fed cba']);
    });

    test('a CLI worker command that fails ends the job with a failure', async () => {
      const peer = await startPeerWorker(t.server.port, 'false', 'gearman', [
        '-h',
        '127.0.0.1',
        '-p',
        String(t.server.port),
        '-w',
        '-f',
        'false',
        '--',
        'false',
      ]);
      t.defer(() => peer.stop());
      const outcome = await t
        .client()
        .submitJob('false', 'x')
        .result.then(
          (result) => `completed: ${result.toString()}`,
          (error: Error) => error,
        );
      // The CLI reports a failed command as WORK_FAIL, or completes with empty output: both end the job.
      if (typeof outcome === 'string') expect(outcome).toBe('completed: ');
      else expect(outcome).toBeInstanceOf(GearmanJobFailedError);
    });
  });

  describeWithPeers([...kind.peers, 'perl-gearman'], `GearmanClient drives a Perl Gearman::Worker on ${kind.name}`, () => {
    const t = useJobServer(kind);

    test('foreground and background jobs reach the Perl worker', async () => {
      const peer = await startPeerWorker(t.server.port, 'shout', 'perl', ['-e', PERL_WORKER, t.server.address, 'shout']);
      t.defer(() => peer.stop());
      const client = t.client();
      expect((await client.submitJob('shout', 'hello').result).toString()).toBe('HELLO from perl');
      expect((await client.submitJob('shout', 'urgent', { priority: 'high', unique: 'u-1' }).result).toString()).toBe('URGENT from perl');
      expect(await client.submitBackgroundJob('shout', 'later')).toMatch(/^H:/);
    });
  });
}
