import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { describeWithPeers, startGearmand } from '../support/gearmand.js';

/** A running job server a test talks to. */
export interface JobServerUnderTest {
  readonly servers: string[];
  stop(): Promise<void>;
}

/**
 * `GearmanJobServer` runs in the test's process, so the transport reaches it over the in-memory
 * channel; `GearmanJobServer over TCP` is the same server with that channel off (`inProcess: false`).
 */
export type JobServerKind = 'GearmanJobServer' | 'GearmanJobServer over TCP' | 'gearmand';

export async function startJobServer(kind: JobServerKind): Promise<JobServerUnderTest> {
  if (kind === 'gearmand') {
    const gearmand = await startGearmand();
    return { servers: [`${gearmand.host}:${gearmand.port}`], stop: () => gearmand.stop() };
  }
  const server = new GearmanJobServer({ port: 0, logger: false, inProcess: kind === 'GearmanJobServer' });
  await server.listen();
  const { host, port } = server.address();
  return { servers: [`${host}:${port}`], stop: () => server.close() };
}

/**
 * Runs `body` against our GearmanJobServer over the in-memory channel and over TCP, and against
 * Debian's gearmand (skipped, saying why, when gearmand is not installed). `body` gets the kind; the job server itself is started by
 * the caller's hooks through `startJobServer(kind)`.
 */
export function describeOnJobServers(title: string, body: (kind: JobServerKind) => void): void {
  describe(`${title} (GearmanJobServer)`, () => body('GearmanJobServer'));
  describe(`${title} (GearmanJobServer over TCP)`, () => body('GearmanJobServer over TCP'));
  describeWithPeers(['gearmand'], `${title} (gearmand)`, () => body('gearmand'));
}

/** Polls until `check` returns true; fails after `timeoutMs` with `what`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
