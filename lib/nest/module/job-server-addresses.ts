import { DEFAULT_GEARMAN_HOST, DEFAULT_GEARMAN_PORT } from '../../common/defaults.js';
import type { ServerAddress } from '../../connection/server-address.js';
import type { GearmanJobServer } from '../../job-server/gearman-job-server.js';

const DEFAULT_SERVERS: ServerAddress[] = [`${DEFAULT_GEARMAN_HOST}:${DEFAULT_GEARMAN_PORT}`];

/**
 * Where this app's client and workers connect: the `servers` option when given, else the embedded
 * server at the port it really bound (so `port: 0` works), else gearmand's default address. Of an
 * embedded server with several listeners, the first plaintext one (the app's own traffic stays on
 * this machine), else the first, over TLS with the client's and workers' `tls` options.
 */
export function jobServerAddresses(servers: ServerAddress[] | undefined, embedded: GearmanJobServer | null): ServerAddress[] {
  if (servers && servers.length > 0) return servers;
  if (!embedded) return DEFAULT_SERVERS;
  const addresses = embedded.addresses();
  const { host, port, tls } = addresses.find((address) => !address.tls) ?? addresses[0];
  return [tls ? { host: reachableHost(host), port, tls: true } : { host: reachableHost(host), port }];
}

/** A server bound to every interface is reached over loopback. */
function reachableHost(boundHost: string): string {
  if (boundHost === '0.0.0.0') return '127.0.0.1';
  if (boundHost === '::') return '::1';
  return boundHost;
}
