import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { GearmanLogger } from '../common/logger.js';
import type { ReconnectOptions } from './backoff.js';
import type { ServerAddress } from './server-address.js';

/** What every client and worker takes: where the job servers are, and how to connect to them. */
export interface GearmanPeerOptions {
  /** Default ['127.0.0.1:4730']. */
  servers?: ServerAddress[];
  /** A connect that takes longer fails with GearmanConnectionError; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Exponential back-off after a lost connection; default 100 ms doubling to 10 s, unlimited attempts. */
  reconnect?: ReconnectOptions;
  /** TCP keepalive initial delay; default 60 000 ms, 0 turns it off. */
  keepAliveMs?: number;
  /** TLS for every server unless its address says otherwise. */
  tls?: boolean | TlsConnectionOptions;
  /** Sent with SET_CLIENT_ID on every connection (shown by the `workers` admin command). */
  clientId?: string;
  /** Largest packet payload accepted from a server; default 64 MiB. */
  maxPacketSize?: number;
  /** Default: warnings and errors to the console. */
  logger?: GearmanLogger;
}
