import 'reflect-metadata';
import { type INestApplication } from '@nestjs/common';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GEARMAN_JOB_SERVER, GEARMAN_SERVERS, GearmanJobServer, GearmanModule } from '../../../lib/index.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../../support/certificates.js';
import { appModule, GreetingService, startHybridApp } from './apps.js';

const describeWithOpenssl = hasOpenssl() || process.env.CI ? describe : describe.skip;
if (!hasOpenssl() && !process.env.CI) console.warn('skipping the embedded TLS server tests: needs openssl (apt-get install openssl)');

describeWithOpenssl('GearmanModule with a TLS embedded server', () => {
  let pki: TestPki;
  const opened: INestApplication[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki?.remove());
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((app) => app.close()));
    for (const close of closers.splice(0)) await close();
  });

  it('embeddedServer.tls: the app reaches its own server over TLS with the client and worker tls options', async () => {
    const tls = { ca: pki.ca.cert };
    const app = await startHybridApp(
      appModule(
        GearmanModule.forRoot({
          embeddedServer: { port: 0, logger: false, tls: { key: pki.server.key, cert: pki.server.cert } },
          client: { tls },
          worker: { tls },
        }),
      ),
    );
    opened.push(app);
    const { port } = app.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address();
    expect(app.get(GEARMAN_SERVERS)).toEqual([{ host: '127.0.0.1', port, tls: true }]);
    expect(await app.get(GreetingService).greet('Ada')).toBe('hello Ada');
  });

  it('mutual TLS: with a ca on the server, the app presents its client certificate and gets in; a client without one does not', async () => {
    const tls = { ca: pki.ca.cert, key: pki.appClient.key, cert: pki.appClient.cert };
    const app = await startHybridApp(
      appModule(
        GearmanModule.forRoot({
          embeddedServer: { port: 0, logger: false, tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert } },
          client: { tls },
          worker: { tls },
        }),
      ),
    );
    opened.push(app);
    expect(await app.get(GreetingService).greet('Grace')).toBe('hello Grace');
    const { port } = app.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address();
    const outsider = new ClientGearman({
      servers: [{ host: '127.0.0.1', port, tls: { ca: pki.ca.cert } }],
      reconnect: { maxAttempts: 0 },
      logger: { log: () => undefined, warn: () => undefined, error: () => undefined },
    });
    closers.push(() => outsider.close());
    await expect(lastValueFrom(outsider.send('module.greet', 'nobody'))).rejects.toThrow();
  });

  it('TLS for the world and plaintext on loopback: the app uses the plaintext listener, an outside client the TLS one', async () => {
    const app = await startHybridApp(
      appModule(
        GearmanModule.forRoot({
          embeddedServer: {
            logger: false,
            tls: { key: pki.server.key, cert: pki.server.cert },
            listeners: [
              { host: '127.0.0.1', port: 0, tls: true },
              { host: '127.0.0.1', port: 0 },
            ],
          },
        }),
      ),
    );
    opened.push(app);
    const [secure, plain] = app.get<GearmanJobServer>(GEARMAN_JOB_SERVER).addresses();
    expect(app.get(GEARMAN_SERVERS)).toEqual([{ host: '127.0.0.1', port: plain.port }]);
    const outsider = new ClientGearman({ servers: [{ host: '127.0.0.1', port: secure.port, tls: { ca: pki.ca.cert } }] });
    closers.push(() => outsider.close());
    expect(await lastValueFrom(outsider.send<string>('module.greet', 'from outside'))).toBe('hello from outside');
  });
});
