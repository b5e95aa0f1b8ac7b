import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { describeWithPeers, startGearmand } from '../support/gearmand.js';
import { PacketType } from '../../lib/protocol/index.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';
import { Scenario, ScenarioContext, scenarios } from './support/scenarios.js';

/** Runs a scenario with fresh peers, closing every one afterwards. */
async function runScenario(scenario: Scenario, port: number): Promise<void> {
  const peers: RawPeer[] = [];
  const context: ScenarioContext = {
    port,
    async peer() {
      const peer = await RawPeer.connect(port);
      peers.push(peer);
      return peer;
    },
    async worker(...functions) {
      const peer = await context.peer();
      for (const fn of functions) peer.send(PacketType.CAN_DO, fn);
      await peer.sync();
      return peer;
    },
    admin: (line, listing = false) => adminQuery(port, line, listing),
  };
  try {
    await scenario.run(context);
  } finally {
    await Promise.all(peers.map((peer) => peer.close()));
  }
}

describe('GearmanJobServer: protocol scenarios', () => {
  for (const scenario of scenarios) {
    test(scenario.title, async () => {
      // gearmand's admin rules (every command for everyone) and its H:host:N handles, which scenarios parse.
      const server = new GearmanJobServer({ port: 0, logger: false, adminCommands: 'all', jobHandles: 'sequential', ...scenario.options });
      await server.listen();
      try {
        await runScenario(scenario, server.address().port);
      } finally {
        await server.close();
      }
    });
  }
});

describeWithPeers(['gearmand'], 'gearmand 1.1.20: the same scenarios', () => {
  for (const scenario of scenarios.filter((candidate) => !candidate.oursOnly)) {
    test(scenario.title, async () => {
      const retries = scenario.options?.jobRetries;
      const flags = [...(retries ? ['--job-retries', String(retries)] : []), ...(scenario.options?.exceptions ? ['--exceptions'] : [])];
      const gearmand = await startGearmand(flags);
      try {
        await runScenario(scenario, gearmand.port);
      } finally {
        await gearmand.stop();
      }
    });
  }
});
