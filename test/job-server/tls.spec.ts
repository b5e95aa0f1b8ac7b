import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobServer, type GearmanJobServerOptions } from '../../lib/job-server/gearman-job-server.js';
import { PacketType } from '../../lib/protocol/index.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { run } from '../client/support/peers.js';
import { makeTestPki, type TestPki } from '../support/certificates.js';
import { describeWithPeers, findExecutable } from '../support/gearmand.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';

const P = PacketType;

/** A logger that keeps the server's warnings, to read what it said about a refused peer. */
function recordingLogger(): { warnings: string[]; log(): void; warn(message: string): void; error(): void } {
  const warnings: string[] = [];
  return { warnings, log: () => undefined, warn: (message: string) => warnings.push(message), error: () => undefined };
}

/** One admin line over TLS; the whole reply. */
function tlsAdmin(port: number, line: string, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...options });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply to ${line}: ${JSON.stringify(text)}`));
    }, 5000);
    socket.once('secureConnect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`connection closed without a reply to ${line}`));
    });
  });
}

describeWithPeers(['openssl'], 'GearmanJobServer over TLS (certificates made by openssl for this run)', () => {
  let pki: TestPki;
  const opened: GearmanJobServer[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki?.remove());
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await Promise.all(opened.splice(0).map((server) => server.close()));
  });

  async function tlsServer(options: GearmanJobServerOptions = {}): Promise<GearmanJobServer> {
    const server = new GearmanJobServer({ port: 0, logger: false, tls: { key: pki.server.key, cert: pki.server.cert }, ...options });
    opened.push(server);
    await server.listen();
    return server;
  }

  /** A client and a worker over TLS that reverse strings; resolves with the client's answer to "hello". */
  async function roundTrip(port: number, tls: ConnectionOptions): Promise<string> {
    const servers = [{ host: '127.0.0.1', port, tls }];
    const worker = new GearmanWorker({ servers, logger: { log: () => undefined, warn: () => undefined, error: () => undefined } });
    worker.register('reverse', (job) => job.data.toString().split('').reverse().join(''));
    const client = new GearmanClient({ servers, reconnect: { maxAttempts: 0 } });
    closers.push(
      () => client.close(),
      () => worker.stop(),
    );
    await worker.start();
    return (await client.submitJob('reverse', 'hello').result).toString();
  }

  test('a client and a worker that trust the CA run a job; the server lists itself as TLS', async () => {
    const server = await tlsServer();
    expect(server.addresses()).toEqual([{ host: '127.0.0.1', port: server.address().port, tls: true }]);
    expect(await roundTrip(server.address().port, { ca: pki.ca.cert })).toBe('olleh');
  });

  test('mutual TLS: with a ca, clients with a certificate it signed get in', async () => {
    const server = await tlsServer({ tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert } });
    expect(await roundTrip(server.address().port, { ca: pki.ca.cert, key: pki.appClient.key, cert: pki.appClient.cert })).toBe('olleh');
  });

  test('mutual TLS: no client certificate, one from another CA, or an expired one: refused, and both sides are told why', async () => {
    const logger = recordingLogger();
    const server = await tlsServer({ logger, tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert } });
    const port = server.address().port;
    const attempts: [ConnectionOptions, RegExp][] = [
      [{ ca: pki.ca.cert }, /it presented no client certificate, which this server requires/],
      [{ ca: pki.ca.cert, key: pki.strangerClient.key, cert: pki.strangerClient.cert }, /client certificate was refused \(UNABLE_TO_/],
      [
        { ca: pki.ca.cert, key: pki.expiredClient.key, cert: pki.expiredClient.cert },
        /client certificate was refused \(CERT_HAS_EXPIRED\)/,
      ],
    ];
    for (const [options, why] of attempts) {
      const before = logger.warnings.length;
      // The peer reads an ERROR packet over the encrypted connection, then the server closes it.
      const peer = await new Promise<RawPeer>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ...options }, () => resolve(RawPeer.over(socket)));
        socket.once('error', reject);
      });
      closers.push(() => peer.close());
      const [code, text] = await peer.expect(P.ERROR);
      expect(code).toBe('CERTIFICATE_REQUIRED');
      expect(text).toMatch(why);
      expect(await peer.closedByServer()).toBe(true);
      expect(logger.warnings.slice(before).join('\n')).toMatch(why);
    }
    // Our client reports the server's code and reason.
    const client = new GearmanClient({
      servers: [{ host: '127.0.0.1', port, tls: { ca: pki.ca.cert } }],
      reconnect: { maxAttempts: 0 },
    });
    const errors: { code: string; message: string }[] = [];
    client.on('error', (error: { code: string; message: string }) => errors.push(error));
    closers.push(() => client.close());
    await expect(client.submitBackgroundJob('f', 'x')).rejects.toThrow();
    expect(errors[0]).toMatchObject({ code: 'CERTIFICATE_REQUIRED', message: expect.stringContaining('no client certificate') });
  });

  test('a client that does not trust the server: the wrong CA, or an expired server certificate', async () => {
    const server = await tlsServer();
    await expect(tlsAdmin(server.address().port, 'status', { ca: pki.otherCa.cert })).rejects.toThrow(
      /unable to verify|self.signed|issuer/i,
    );
    const expired = await tlsServer({ tls: { key: pki.expiredServer.key, cert: pki.expiredServer.cert } });
    await expect(tlsAdmin(expired.address().port, 'status', { ca: pki.ca.cert })).rejects.toThrow(/certificate has expired/);
    const client = new GearmanClient({ servers: [{ host: '127.0.0.1', port: expired.address().port, tls: { ca: pki.ca.cert } }] });
    closers.push(() => client.close());
    await expect(client.connect()).rejects.toThrow(/certificate has expired/);
  });

  test('plaintext on a TLS port: an ERROR packet (or ERR line) saying TLS is required, the connection closed, a warning logged', async () => {
    const logger = recordingLogger();
    const server = await tlsServer({ logger });
    const port = server.address().port;
    const peer = await RawPeer.connect(port);
    closers.push(() => peer.close());
    peer.send(P.ECHO_REQ, 'hello');
    expect(await peer.expect(P.ERROR)).toEqual(['TLS_REQUIRED', 'This port takes TLS connections only: connect with TLS']);
    expect(await peer.closedByServer()).toBe(true);
    expect(await adminQuery(port, 'status', false)).toBe('ERR TLS_REQUIRED This+port+takes+TLS+connections+only:+connect+with+TLS\r\n');
    expect(logger.warnings.join('\n')).toMatch(/spoke plaintext to a TLS port/);
    // Our client without tls reports the server's code (its first request, OPTION_REQ, is the one
    // answered), and the job it submitted fails with the lost connection.
    const client = new GearmanClient({ servers: [`127.0.0.1:${port}`], reconnect: { maxAttempts: 0 } });
    const errors: { code: string; message: string }[] = [];
    client.on('error', (error: { code: string; message: string }) => errors.push(error));
    closers.push(() => client.close());
    await expect(client.submitBackgroundJob('f', 'x')).rejects.toMatchObject({ name: 'GearmanConnectionError' });
    expect(errors[0]).toMatchObject({ code: 'TLS_REQUIRED', message: expect.stringContaining('This port takes TLS connections only') });
  });

  test('TLS on a plaintext port: the server logs it and closes at once, the client fails to connect', async () => {
    const logger = recordingLogger();
    const server = new GearmanJobServer({ port: 0, logger });
    opened.push(server);
    await server.listen();
    await expect(tlsAdmin(server.address().port, 'status', { ca: pki.ca.cert })).rejects.toThrow(/socket disconnected|ECONNRESET|hang up/i);
    expect(logger.warnings.join('\n')).toMatch(/began a TLS handshake on a plaintext port/);
  });

  test('TLS and plaintext listeners side by side: TLS on one address, plaintext on another, one queue', async () => {
    const server = new GearmanJobServer({
      logger: false,
      tls: { key: pki.server.key, cert: pki.server.cert },
      listeners: [
        { host: '127.0.0.1', port: 0, tls: true },
        { host: '127.0.0.1', port: 0 },
      ],
    });
    opened.push(server);
    await server.listen();
    const [secure, plain] = server.addresses();
    expect([secure.tls, plain.tls]).toEqual([true, false]);
    const client = new GearmanClient({ servers: [{ host: '127.0.0.1', port: secure.port, tls: { ca: pki.ca.cert } }] });
    closers.push(() => client.close());
    await client.submitBackgroundJob('shared', 'x');
    expect(await adminQuery(plain.port, 'status', true)).toBe('shared\t1\t0\t0\n.\n');
  });

  test('adminCertificates: a named client certificate may run every command, another one is read-only', async () => {
    const server = await tlsServer({
      tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert },
      adminCertificates: ['admin-client', pki.appClient.fingerprint256.toLowerCase().replace(/:/g, 'z').replace(/z/g, ':')],
    });
    const port = server.address().port;
    const as = (client: typeof pki.adminClient) => ({ ca: pki.ca.cert, key: client.key, cert: client.cert });
    expect(await tlsAdmin(port, 'create function by-name', as(pki.adminClient))).toBe('OK\r\n');
    expect(await tlsAdmin(port, 'create function by-fingerprint', as(pki.appClient))).toBe('OK\r\n');
    const other = await tlsServer({
      tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert },
      adminCertificates: ['admin-client'],
    });
    expect(await tlsAdmin(other.address().port, 'create function f', as(pki.appClient))).toMatch(/^ERR PERMISSION_DENIED /);
    expect(await tlsAdmin(other.address().port, 'status', as(pki.appClient))).toBe('.\n');
  });

  test('a TLS listener on every interface logs no warning about plaintext', async () => {
    const logger = recordingLogger();
    await tlsServer({ host: '0.0.0.0', logger });
    expect(logger.warnings).toEqual([]);
  });

  test('options: TLS needs a key and a certificate, a TLS listener needs tls, adminCertificates needs a ca', () => {
    expect(() => new GearmanJobServer({ tls: { cert: pki.server.cert } })).toThrow(/key and cert/);
    expect(() => new GearmanJobServer({ listeners: [{ port: 0, tls: true }] })).toThrow(/needs the tls option/);
    expect(() => new GearmanJobServer({ tls: { key: pki.server.key, cert: pki.server.cert }, adminCertificates: ['x'] })).toThrow(
      /needs tls with a ca/,
    );
    expect(() => new GearmanJobServer({ tls: { key: pki.ca.key, cert: pki.server.cert } })).toThrow();
  });
});

describeWithPeers(['openssl', 'gearman'], "Debian's libgearman and TLS", () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki?.remove());

  // Debian builds libgearman without TLS (libgearman.so.8 links no TLS library): `gearman -S`
  // is accepted and ignored, and the client speaks plaintext. Our TLS port refuses it plainly.
  test('`gearman -S` sends plaintext: our TLS port answers TLS_REQUIRED, the CLI prints it, no job is queued', async () => {
    const logger = recordingLogger();
    const server = new GearmanJobServer({
      logger,
      tls: { key: pki.server.key, cert: pki.server.cert },
      listeners: [
        { host: '127.0.0.1', port: 0, tls: true },
        { host: '127.0.0.1', port: 0 },
      ],
    });
    await server.listen();
    try {
      const [secure, plain] = server.addresses();
      const gearman = findExecutable('gearman')!;
      for (const mode of [[], ['-b']]) {
        const result = await run(gearman, ['-S', '-h', '127.0.0.1', '-p', String(secure.port), '-f', 'f', ...mode, '-s', '-t', '3000']);
        // The CLI exits 0 whatever happened; what it says is the proof.
        expect(result.stderr).toContain('TLS_REQUIRED:This port takes TLS connections only');
      }
      expect(logger.warnings.join('\n')).toMatch(/spoke plaintext to a TLS port/);
      expect(await adminQuery(plain.port, 'status', true)).toBe('.\n');
    } finally {
      await server.close();
    }
  });
});
