import type { ClientGearman } from '../client-gearman.js';

const POLL_MS = 20;

/**
 * Closes a client once no reply is outstanding, or after `timeoutMs` (the replies still awaited then
 * fail with a connection error). This lets a job that a worker is finishing during shutdown deliver
 * its result instead of being cut off.
 */
export async function closeClientGracefully(client: ClientGearman, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (outstandingReplies(client) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  await client.close();
}

/**
 * Nest's `ClientProxy` keeps one routing entry per `send()` whose reply has not ended (Nest 11 and 12
 * alike). A test double put in the client's place may have none: nothing to wait for then.
 */
function outstandingReplies(client: ClientGearman): number {
  return (client as unknown as { routingMap?: Map<string, unknown> }).routingMap?.size ?? 0;
}
