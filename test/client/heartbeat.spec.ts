import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { adminQuery } from '../job-server/support/raw-peer.js';

describe("GearmanClient's heartbeat against a job server that closes idle connections", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  test('a quiet client that sends ECHO_REQ keeps its connection; one with heartbeatMs 0 is closed', async () => {
    const server = new GearmanJobServer({ port: 0, logger: false, limits: { idleTimeoutMs: 300 } });
    await server.listen();
    cleanups.push(() => server.close());
    const port = server.address().port;
    const disconnects: Record<string, number> = { beating: 0, silent: 0 };
    const clients = Object.keys(disconnects).map((name) => {
      const client = new GearmanClient({ servers: [`127.0.0.1:${port}`], heartbeatMs: name === 'beating' ? 100 : 0, clientId: name });
      client.on('disconnect', () => disconnects[name]++);
      cleanups.push(() => client.close());
      return client;
    });
    await Promise.all(clients.map((client) => client.connect()));
    const deadline = Date.now() + 5000;
    while (disconnects.silent === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(disconnects.silent).toBeGreaterThan(0);
    expect(disconnects.beating).toBe(0);
    expect(await adminQuery(port, 'workers', true)).toMatch(/ beating :/);
  });

  test('heartbeatMs must be a whole number ≥ 0', () => {
    expect(() => new GearmanClient({ heartbeatMs: -1 })).toThrow(TypeError);
  });
});
