import {
  adminAccessFor,
  adminRefusal,
  certificateNames,
  isLoopbackAddress,
  mayRunAdminCommand,
  READ_ONLY_ADMIN_COMMANDS,
} from '../../lib/job-server/admin-access.js';
import { runAdminCommand } from '../../lib/job-server/admin-commands.js';
import { IN_PROCESS_PEER_ADDRESS } from '../../lib/connection/in-memory-socket.js';
import { JobBroker } from '../../lib/job-server/job-broker.js';
import { Priority } from '../../lib/job-server/job.js';
import type { PeerCertificate } from 'node:tls';

// The rule, for peers from every kind of address: tests send traffic to loopback only, so the
// refusals for other peers are proved here, on the rule itself.
describe('admin access: who may run what', () => {
  const loopback = ['127.0.0.1', '127.3.4.5', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.0.0.9', IN_PROCESS_PEER_ADDRESS];
  const others = [
    '10.0.0.5',
    '192.168.1.20',
    '::ffff:10.0.0.5',
    '2001:db8::1',
    '::',
    '0.0.0.0',
    '128.0.0.1',
    'fe80::1',
    '::2',
    undefined,
    '',
    'localhost',
  ];

  test('loopback addresses: 127.0.0.0/8, ::1 however written, IPv4-mapped loopback, and the same process', () => {
    for (const address of loopback) expect([address, isLoopbackAddress(address)]).toEqual([address, true]);
    for (const address of others) expect([address, isLoopbackAddress(address)]).toEqual([address, false]);
  });

  const sockets = loopback.filter((address) => address !== IN_PROCESS_PEER_ADDRESS);

  test('read-only (the default level) gives every peer across a socket read-only access, loopback included', () => {
    for (const address of [...sockets, ...others]) expect(adminAccessFor('read-only', { address })).toBe('read-only');
  });

  test('loopback gives loopback peers everything and every other peer read-only', () => {
    for (const address of sockets) expect(adminAccessFor('loopback', { address })).toBe('all');
    for (const address of others) expect(adminAccessFor('loopback', { address })).toBe('read-only');
  });

  test("a connection from the server's own process (the in-memory channel) gets everything at every level", () => {
    for (const setting of ['read-only', 'loopback', 'all'] as const) {
      expect(adminAccessFor(setting, { address: IN_PROCESS_PEER_ADDRESS })).toBe('all');
    }
  });

  test('all gives everyone everything, as gearmand', () => {
    for (const address of [...loopback, ...others]) expect(adminAccessFor('all', { address })).toBe('all');
  });

  test('a certificate named in adminCertificates gives everything at any level, from any address; others do not', () => {
    const fingerprint = 'AB:CD:'.repeat(15) + 'AB:CD';
    const admin = { address: '10.0.0.5', certificateNames: ['ops-console', 'ops.example.com', fingerprint] };
    for (const setting of ['read-only', 'loopback'] as const) {
      expect(adminAccessFor(setting, admin, ['ops-console'])).toBe('all');
      expect(adminAccessFor(setting, admin, ['ops.example.com'])).toBe('all');
      // A fingerprint may be written without colons or in lower case.
      expect(adminAccessFor(setting, admin, [fingerprint.replace(/:/g, '').toLowerCase()])).toBe('all');
      expect(adminAccessFor(setting, admin, ['someone-else'])).toBe('read-only');
      expect(adminAccessFor(setting, admin, [])).toBe('read-only');
      expect(adminAccessFor(setting, { address: '10.0.0.5' }, ['ops-console'])).toBe('read-only');
    }
  });

  test('read-only access runs status, prioritystatus, workers, version, getpid and verbose; everything else needs all', () => {
    expect([...READ_ONLY_ADMIN_COMMANDS].sort()).toEqual(['getpid', 'prioritystatus', 'status', 'verbose', 'version', 'workers']);
    for (const command of READ_ONLY_ADMIN_COMMANDS) expect(mayRunAdminCommand(command, 'read-only')).toBe(true);
    for (const command of ['cancel', 'drop', 'create', 'maxqueue', 'pause', 'resume', 'show', 'shutdown', 'anything-new']) {
      expect(mayRunAdminCommand(command, 'read-only')).toBe(false);
      expect(mayRunAdminCommand(command, 'all')).toBe(true);
    }
    // Of the listings, only the paused functions' names and the kept results' totals; and one job by the id the peer gives.
    expect(mayRunAdminCommand('show', 'read-only', ['paused', 'functions'])).toBe(true);
    expect(mayRunAdminCommand('show', 'read-only', ['PAUSED', 'Functions'])).toBe(true);
    expect(mayRunAdminCommand('show', 'read-only', ['results'])).toBe(true);
    expect(mayRunAdminCommand('show', 'read-only', ['job', 'H:x:1a-0123456789abcdef'])).toBe(true);
    expect(mayRunAdminCommand('show', 'read-only', ['job'])).toBe(false);
    expect(mayRunAdminCommand('show', 'read-only', ['jobs'])).toBe(false);
    expect(mayRunAdminCommand('show', 'read-only', ['batches'])).toBe(false);
    expect(mayRunAdminCommand('show', 'all', ['batches'])).toBe(true);
    expect(mayRunAdminCommand('show', 'read-only', ['unique', 'jobs'])).toBe(false);
  });

  test('the refusal is an ERR line naming the setting', () => {
    expect(adminRefusal('cancel')).toBe(
      "ERR PERMISSION_DENIED cancel:+not+allowed+(the+server's+adminCommands+setting+lets+this+connection+read+only)\r\n",
    );
  });

  test('certificateNames: common name, DNS and e-mail alternative names, SHA-256 fingerprint; nothing without a certificate', () => {
    const certificate = {
      raw: Buffer.from('x'),
      subject: { CN: 'ops-console' },
      subjectaltname: 'DNS:ops.example.com, IP Address:10.0.0.5, email:ops@example.com',
      fingerprint256: 'AA:BB',
    } as unknown as PeerCertificate;
    expect(certificateNames(certificate)).toEqual(['ops-console', 'ops.example.com', 'ops@example.com', 'AA:BB']);
    expect(certificateNames(undefined)).toEqual([]);
    expect(certificateNames({} as PeerCertificate)).toEqual([]);
  });
});

describe('admin commands under each access', () => {
  function broker(): JobBroker {
    const jobs = new JobBroker({ handlePrefix: 'H:t', jobHandles: 'sequential', jobRetries: 0, warn: () => undefined });
    const peer = jobs.connect({
      id: 1,
      host: '127.0.0.1',
      clientId: '-',
      exceptions: false,
      send: () => undefined,
      reserve: () => () => undefined,
    });
    jobs.submit(peer, { functionName: 'f', unique: 'u', data: 'x', priority: Priority.NORMAL, background: true });
    return jobs;
  }
  const context = () => ({ broker: broker(), version: '0.1.0', verbose: 'FATAL' });

  test('read-only: the state commands answer as before; the ones that change state or list jobs are refused, and change nothing', () => {
    const admin = context();
    expect(runAdminCommand(admin, 'status', 'read-only')).toBe('f\t1\t0\t0\n.\n');
    expect(runAdminCommand(admin, 'PRIORITYSTATUS', 'read-only')).toBe('f\t0\t1\t0\t0\n.\n');
    expect(runAdminCommand(admin, 'workers', 'read-only')).toBe('1 127.0.0.1 - :\n.\n');
    expect(runAdminCommand(admin, 'version', 'read-only')).toBe('OK 0.1.0\n');
    expect(runAdminCommand(admin, 'verbose', 'read-only')).toBe('OK FATAL\n');
    expect(runAdminCommand(admin, 'getpid', 'read-only')).toBe(`OK ${process.pid}\n`);
    for (const line of [
      'cancel job H:t:1',
      'drop function f',
      'create function g',
      'maxqueue f 1',
      'pause function f',
      'resume function f',
      'show jobs',
      'show unique jobs',
      'SHOW JOBS',
    ]) {
      expect(runAdminCommand(admin, line, 'read-only')).toMatch(/^ERR PERMISSION_DENIED \S+:\+not\+allowed/);
    }
    expect(runAdminCommand(admin, 'status', 'read-only')).toBe('f\t1\t0\t0\n.\n');
    expect(runAdminCommand(admin, 'show paused functions', 'read-only')).toBe('.\n');
    // Unknown commands stay unknown.
    expect(runAdminCommand(admin, 'shutdown', 'read-only')).toBe('ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n');
  });

  test('all: every command, as gearmand', () => {
    const admin = context();
    expect(runAdminCommand(admin, 'show jobs', 'all')).toBe('H:t:1\t0\t0\t1\n.\n');
    expect(runAdminCommand(admin, 'show unique jobs', 'all')).toBe('u\n.\n');
    expect(runAdminCommand(admin, 'cancel job H:t:1', 'all')).toBe('OK\r\n');
    expect(runAdminCommand(admin, 'status', 'all')).toBe('f\t0\t0\t0\n.\n');
  });
});
