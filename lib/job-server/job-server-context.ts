import type { JobBroker } from './job-broker.js';
import type { ServerConnection } from './server-connection.js';

/** What a connection needs from the server that owns it. */
export interface JobServerContext {
  readonly broker: JobBroker;
  readonly exceptions: boolean;
  readonly maxPacketSize: number;
  readonly keepAliveMs: number | undefined;
  /** Runs one admin line (a byte string) and returns the reply text (a byte string). */
  runAdmin(con: ServerConnection, line: string): string;
  connectionClosed(con: ServerConnection, error?: Error): void;
  logWarning(message: string): void;
  logError(message: string): void;
}
