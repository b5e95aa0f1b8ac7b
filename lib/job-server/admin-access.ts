import { isIPv4, isIPv6 } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { IN_PROCESS_PEER_ADDRESS } from '../connection/in-memory-socket.js';
import { formatAdminError } from '../protocol/admin.js';

/**
 * Who may run which admin command: the job server's `adminCommands` setting, in one place, for the
 * server's text admin protocol and for anything else that acts on a job server on a peer's behalf
 * (a dashboard's buttons).
 *
 * - `read-only` (the default): every peer may read the server's state (READ_ONLY_ADMIN_COMMANDS);
 *   commands that change it, or that list other clients' jobs, are refused.
 * - `loopback`: peers on this machine (127.0.0.0/8, ::1) may run every command; others are read-only.
 * - `all`: gearmand's behaviour, every command for every peer.
 *
 * Whatever the setting, a peer whose verified TLS client certificate is named in `adminCertificates`
 * may run every command, and so may a connection from the server's own process (the in-memory
 * channel): it is not a peer across a socket, and code in that process holds the server anyway.
 */
export type AdminCommandsSetting = 'read-only' | 'loopback' | 'all';

export const ADMIN_COMMANDS_SETTINGS: readonly AdminCommandsSetting[] = ['read-only', 'loopback', 'all'];

/** What one peer may do: read the server's state, or everything. */
export type AdminAccess = 'read-only' | 'all';

/**
 * Commands every peer may run: they show functions, counts and connections, never a job's handle
 * or unique id (a handle is the key to a job's status and, with stored results, to its result).
 */
export const READ_ONLY_ADMIN_COMMANDS: ReadonlySet<string> = new Set([
  'status',
  'prioritystatus',
  'workers',
  'version',
  'getpid',
  'verbose',
]);

/**
 * `show` listings every peer may read (lower-cased words after `show`): function names, and the
 * kept results' totals (counts and bytes, no job).
 */
const READ_ONLY_SHOW_LISTINGS: ReadonlySet<string> = new Set(['paused functions', 'results']);

/** What the rule knows of a peer. */
export interface AdminPeer {
  /** Its address as the socket reports it (`::ffff:` forms included), or IN_PROCESS_PEER_ADDRESS. */
  readonly address: string | undefined;
  /** The names of its TLS client certificate, when it presented one that the server verified (certificateNames). */
  readonly certificateNames?: readonly string[];
}

/**
 * Whether an address is this machine's loopback: 127.0.0.0/8 (also as `::ffff:127.x.y.z`), `::1`,
 * or a connection from the same process, which never leaves it.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (address === IN_PROCESS_PEER_ADDRESS) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const v4 = mapped ? mapped[1] : address;
  if (isIPv4(v4)) return v4.startsWith('127.');
  if (!isIPv6(address)) return false;
  // ::1 in any spelling (0:0:0:0:0:0:0:1, ::0:1 ...).
  const groups = expandIPv6(address);
  return groups !== undefined && groups.slice(0, 7).every((group) => group === 0) && groups[7] === 1;
}

function expandIPv6(address: string): number[] | undefined {
  const [head, tail] = address.split('::');
  const parse = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const front = parse(head);
  const back = parse(tail);
  if (address.includes('::')) return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  return front.length === 8 ? front : undefined;
}

/**
 * The names a verified client certificate goes by, any of which `adminCertificates` may list: its
 * subject's common name, each DNS name and e-mail address of its subject alternative names, and
 * its SHA-256 fingerprint (`AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it).
 */
export function certificateNames(certificate: PeerCertificate | undefined): string[] {
  if (!certificate || !certificate.raw) return [];
  const names: string[] = [];
  const common = certificate.subject?.CN;
  if (typeof common === 'string') names.push(common);
  else if (Array.isArray(common)) names.push(...(common as string[]));
  for (const entry of (certificate.subjectaltname ?? '').split(', ')) {
    const match = /^(DNS|email):(.+)$/.exec(entry);
    if (match) names.push(match[2]);
  }
  if (certificate.fingerprint256) names.push(certificate.fingerprint256);
  return names;
}

/** A fingerprint written with or without colons, in either case, compares equal. */
function sameName(listed: string, name: string): boolean {
  if (listed === name) return true;
  const hex = (text: string) => text.replace(/:/g, '').toUpperCase();
  return /^[0-9A-Fa-f:]{64,95}$/.test(listed) && /^[0-9A-F:]{95}$/.test(name) && hex(listed) === hex(name);
}

/** What a peer may do under a setting. */
export function adminAccessFor(setting: AdminCommandsSetting, peer: AdminPeer, adminCertificates: readonly string[] = []): AdminAccess {
  if (setting === 'all' || peer.address === IN_PROCESS_PEER_ADDRESS) return 'all';
  if (setting === 'loopback' && isLoopbackAddress(peer.address)) return 'all';
  const names = peer.certificateNames ?? [];
  if (adminCertificates.some((listed) => names.some((name) => sameName(listed, name)))) return 'all';
  return 'read-only';
}

/** Whether an admin command (its first word, lower-cased, and the words after it) may run with this access. */
export function mayRunAdminCommand(command: string, access: AdminAccess, args: readonly string[] = []): boolean {
  if (access === 'all' || READ_ONLY_ADMIN_COMMANDS.has(command)) return true;
  if (command !== 'show') return false;
  // `show job X` tells the state and sizes of the one job the peer names by its handle or unique id,
  // as a gearman.result fetch or GET_STATUS_UNIQUE would: it lists nothing the peer does not hold.
  if (args.length === 2 && args[0].toLowerCase() === 'job') return true;
  return READ_ONLY_SHOW_LISTINGS.has(args.join(' ').toLowerCase());
}

/** The `ERR` reply to a command the peer may not run: it names the setting that would allow it. */
export function adminRefusal(word: string): string {
  return formatAdminError('PERMISSION_DENIED', `${word}: not allowed (the server's adminCommands setting lets this connection read only)`);
}
