import type { FrameTransport } from './frame-transport.js';
import { InMemorySocket } from './in-memory-socket.js';

/** Takes the job server's end of a new in-memory channel as a connection. */
export type InProcessAcceptor = (socket: FrameTransport) => void;

/** The job servers listening in this process, by `host|port` of every address that reaches them. */
const acceptors = new Map<string, InProcessAcceptor>();

const LOOPBACK = ['127.0.0.1', '::1', 'localhost'];

/** Every host name a client may use to reach a server bound to `host`, within this machine. */
function reachingHosts(host: string): string[] {
  const bound = host.toLowerCase();
  if (bound === '0.0.0.0') return [bound, '127.0.0.1', 'localhost'];
  // A dual-stack wildcard also takes IPv4.
  if (bound === '::') return [bound, ...LOOPBACK];
  if (bound === '127.0.0.1' || bound === '::1') return [bound, 'localhost'];
  return [bound];
}

function key(host: string, port: number): string {
  return `${host.toLowerCase()}|${port}`;
}

/**
 * Registers a job server listening in this process, so that clients and workers of this process
 * that connect to its address get an in-memory channel instead of a loopback TCP connection.
 * Returns the function that unregisters it (call it before the server stops accepting).
 */
export function registerInProcessServer(host: string, port: number, accept: InProcessAcceptor): () => void {
  const keys = reachingHosts(host)
    .map((name) => key(name, port))
    // An address another server of this process already answers (two servers on ::1 and 127.0.0.1) stays its.
    .filter((entry) => !acceptors.has(entry));
  for (const entry of keys) acceptors.set(entry, accept);
  return () => {
    for (const entry of keys) if (acceptors.get(entry) === accept) acceptors.delete(entry);
  };
}

/**
 * The client's end of an in-memory channel to the job server of this process listening at
 * host:port (it emits 'connect' on the next tick), or undefined when none listens there.
 */
export function connectInProcess(host: string, port: number): InMemorySocket | undefined {
  const accept = acceptors.get(key(host, port));
  if (!accept) return undefined;
  const { client, server } = InMemorySocket.pair();
  accept(server);
  return client;
}
