import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';

import { DEFAULT_GEARMAN_HOST, DEFAULT_GEARMAN_PORT } from '../common/defaults.js';

/**
 * A job server as users write it: `'host:port'`, `'host'` (port 4730), or an object. Its `tls`:
 * `true` turns TLS on with the client's or worker's own `tls` options (its CA, its certificate),
 * an object gives this server its own, `false` turns it off.
 */
export type ServerAddress = string | { host: string; port?: number; tls?: boolean | TlsConnectionOptions };

/** A job server address with every default applied. */
export interface ResolvedServerAddress {
  readonly host: string;
  readonly port: number;
  /** TLS options when the connection is encrypted, undefined for plain TCP. */
  readonly tls: TlsConnectionOptions | undefined;
  /** `host:port`, as used in logs, errors and events. */
  readonly label: string;
}

function checkPort(port: number, input: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`Invalid Gearman server address ${JSON.stringify(input)}: port must be an integer from 1 to 65535`);
  }
  return port;
}

function tlsOptions(tls: boolean | TlsConnectionOptions | undefined): TlsConnectionOptions | undefined {
  if (tls === undefined || tls === false) return undefined;
  return tls === true ? {} : tls;
}

function formatLabel(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses one server address. `defaultTls` applies unless the address itself says otherwise.
 * IPv6 literals are written in brackets: `[::1]:4730`.
 */
export function resolveServerAddress(address: ServerAddress, defaultTls?: boolean | TlsConnectionOptions): ResolvedServerAddress {
  let host: string;
  let port: number;
  let tls = tlsOptions(defaultTls);
  if (typeof address === 'string') {
    const text = address.trim();
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
    const plain = /^([^:\s]+)(?::(\d*))?$/.exec(text);
    const match = bracketed ?? plain;
    if (!match || match[2] === '') {
      throw new TypeError(`Invalid Gearman server address ${JSON.stringify(address)}: expected 'host', 'host:port' or '[ipv6]:port'`);
    }
    host = match[1];
    port = match[2] === undefined ? DEFAULT_GEARMAN_PORT : checkPort(Number(match[2]), address);
  } else if (address && typeof address === 'object' && typeof address.host === 'string' && address.host.length > 0) {
    host = address.host;
    port = address.port === undefined ? DEFAULT_GEARMAN_PORT : checkPort(address.port, JSON.stringify(address));
    if (address.tls === true) tls ??= {};
    else if (address.tls !== undefined) tls = tlsOptions(address.tls);
  } else {
    throw new TypeError(`Invalid Gearman server address ${JSON.stringify(address)}: expected a string or { host, port?, tls? }`);
  }
  return { host, port, tls, label: formatLabel(host, port) };
}

/** Parses a server list; an empty or missing list means the default `127.0.0.1:4730`. Duplicates are rejected. */
export function resolveServerAddresses(
  addresses: readonly ServerAddress[] | undefined,
  defaultTls?: boolean | TlsConnectionOptions,
): ResolvedServerAddress[] {
  const list = addresses && addresses.length > 0 ? addresses : [`${DEFAULT_GEARMAN_HOST}:${DEFAULT_GEARMAN_PORT}`];
  const resolved = list.map((address) => resolveServerAddress(address, defaultTls));
  const seen = new Set<string>();
  for (const { label } of resolved) {
    if (seen.has(label)) throw new TypeError(`Gearman server ${label} is listed twice`);
    seen.add(label);
  }
  return resolved;
}
