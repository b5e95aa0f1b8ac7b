/** What each app reports once it runs: logged, and sent to the demo runner when it started the app. */
export interface ReadyMessage {
  app: 'gateway' | 'worker' | 'inventory' | 'counter';
  /** The gateway's base URL. */
  url?: string;
  /** The job servers the app uses (the embedded one's real address included). */
  gearmanServers: string[];
  /** Whether this app runs the embedded job server. */
  embeddedServer: boolean;
  patterns?: string[];
}

export function reportReady(message: ReadyMessage): void {
  if (process.send) process.send({ ready: message });
  else console.log(`[${message.app}] ready: ${JSON.stringify(message)}`);
}

/** `ServerAddress` values as `host:port` text. */
export function describeServers(servers: (string | { host: string; port?: number })[]): string[] {
  return servers.map((server) => (typeof server === 'string' ? server : `${server.host}:${server.port ?? 4730}`));
}
