import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One certificate and its key, PEM, with the files they were written to. */
export interface Issued {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly certFile: string;
  readonly keyFile: string;
  /** SHA-256 fingerprint as `openssl x509 -fingerprint -sha256` and Node print it (`AB:CD:…`). */
  readonly fingerprint256: string;
}

/** A throwaway PKI made by `openssl` for one test file: never committed, removed by remove(). */
export interface TestPki {
  readonly dir: string;
  readonly ca: Issued;
  /** For 127.0.0.1 and localhost, signed by `ca`. */
  readonly server: Issued;
  /** The same names, expired in 2020. */
  readonly expiredServer: Issued;
  /** Client certificates signed by `ca`: common names `admin-client` and `app-client`. */
  readonly adminClient: Issued;
  readonly appClient: Issued;
  /** Signed by `ca`, expired in 2020. */
  readonly expiredClient: Issued;
  /** Another CA, and a client certificate it signed (`stranger`). */
  readonly otherCa: Issued;
  readonly strangerClient: Issued;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Whether `openssl` runs here. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Generates a CA, server and client certificates (EC P-256 keys, quick to make) in a fresh temporary directory. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-gearman-pki-'));
  const read = (name: string, file: string): Issued => {
    const certFile = join(dir, `${file}.pem`);
    const keyFile = join(dir, `${file}.key`);
    const fingerprint = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    return {
      cert: readFileSync(certFile),
      key: readFileSync(keyFile),
      certFile,
      keyFile,
      fingerprint256: fingerprint.trim().replace(/^.*=/, ''),
    };
  };
  const key = (file: string) => openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${file}.key`]);
  const makeCa = (file: string, name: string) => {
    key(file);
    openssl(dir, ['req', '-x509', '-new', '-key', `${file}.key`, '-subj', `/CN=${name}`, '-days', '3', '-out', `${file}.pem`]);
  };
  const extensions = (file: string, text: string) => writeFileSync(join(dir, `${file}.ext`), `${text}\n`);
  const issue = (file: string, name: string, ca: string, extension: string) => {
    key(file);
    extensions(file, extension);
    openssl(dir, ['req', '-new', '-key', `${file}.key`, '-subj', `/CN=${name}`, '-out', `${file}.csr`]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${file}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '3',
      '-extfile',
      `${file}.ext`,
      '-out',
      `${file}.pem`,
    ]);
  };
  // `openssl ca` is the one command that writes chosen dates in the past.
  const issueExpired = (file: string, name: string, extension: string) => {
    key(file);
    extensions(file, extension);
    mkdirSync(join(dir, 'ca-db'), { recursive: true });
    writeFileSync(join(dir, 'ca-db', 'index.txt'), '');
    writeFileSync(join(dir, 'ca-db', 'serial'), `${String(Date.now() % 100000).padStart(6, '0')}\n`);
    writeFileSync(
      join(dir, 'ca.cnf'),
      '[ ca ]\ndefault_ca = test\n[ test ]\ndatabase = ca-db/index.txt\nnew_certs_dir = ca-db\nserial = ca-db/serial\n' +
        'default_md = sha256\npolicy = any\nunique_subject = no\n[ any ]\ncommonName = supplied\n',
    );
    openssl(dir, ['req', '-new', '-key', `${file}.key`, '-subj', `/CN=${name}`, '-out', `${file}.csr`]);
    openssl(dir, [
      'ca',
      '-batch',
      '-config',
      'ca.cnf',
      '-cert',
      'ca.pem',
      '-keyfile',
      'ca.key',
      '-in',
      `${file}.csr`,
      '-out',
      `${file}.pem`,
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20200102000000Z',
      '-extfile',
      `${file}.ext`,
    ]);
  };
  const serverNames = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth';
  const clientUse = 'extendedKeyUsage=clientAuth';
  makeCa('ca', 'nestjs-gearman test CA');
  makeCa('other-ca', 'another CA');
  issue('server', 'localhost', 'ca', serverNames);
  issueExpired('expired-server', 'localhost', serverNames);
  issue('admin-client', 'admin-client', 'ca', clientUse);
  issue('app-client', 'app-client', 'ca', clientUse);
  issueExpired('expired-client', 'expired-client', clientUse);
  issue('stranger', 'stranger', 'other-ca', clientUse);
  return {
    dir,
    ca: read('ca', 'ca'),
    server: read('server', 'server'),
    expiredServer: read('expired-server', 'expired-server'),
    adminClient: read('admin-client', 'admin-client'),
    appClient: read('app-client', 'app-client'),
    expiredClient: read('expired-client', 'expired-client'),
    otherCa: read('other-ca', 'other-ca'),
    strangerClient: read('stranger', 'stranger'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
