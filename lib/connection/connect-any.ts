import { GearmanConnectionError } from '../common/errors.js';
import type { GearmanConnection } from './gearman-connection.js';

/**
 * Opens every connection; resolves as soon as one is up (the others keep trying in the background).
 * When none can be reached, halts those that were idle and rejects with one GearmanConnectionError naming each failure.
 */
export async function connectAny(connections: readonly GearmanConnection[]): Promise<void> {
  if (connections.some((connection) => connection.isConnected)) return;
  // Connections already reconnecting in the background keep doing so after a failure here.
  const idle = connections.filter((connection) => !connection.isWanted);
  try {
    await Promise.any(connections.map((connection) => connection.open()));
  } catch (error) {
    for (const connection of idle) connection.halt();
    const failures = (error as AggregateError).errors.map((failure: Error) => failure.message);
    throw new GearmanConnectionError(
      connections.length === 1 ? failures[0] : `Cannot connect to any job server: ${failures.join('; ')}`,
      connections.length === 1 ? connections[0].label : undefined,
      { cause: error },
    );
  }
}
