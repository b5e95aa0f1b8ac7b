import { GearmanConnectionError } from '../common/errors.js';
import type { GearmanConnection } from './gearman-connection.js';

/**
 * Opens every connection; resolves as soon as one is up (the others keep trying in the background).
 *
 * With `waitMs` 0 each connection gets one attempt. With more, connections whose attempt failed
 * keep trying with their reconnect back-off until one is up, until every one has used up its
 * attempts, or until `waitMs` has passed. When none came up, halts those that were idle and
 * rejects with a GearmanConnectionError: the server's own error for one server (the socket's
 * error as its cause, its system code as `code`), else one naming each failure.
 */
export async function connectAny(connections: readonly GearmanConnection[], waitMs = 0): Promise<void> {
  if (connections.some((connection) => connection.isConnected)) return;
  // Connections already reconnecting in the background keep doing so after a failure here.
  const idle = connections.filter((connection) => !connection.isWanted);
  let timer: NodeJS.Timeout | undefined;
  const attempts = connections.map((connection) =>
    connection.open().catch((error: unknown) => (waitMs > 0 && connection.isWanted ? connection.whenConnected() : Promise.reject(error))),
  );
  const deadline =
    waitMs > 0
      ? new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('deadline')), waitMs);
        })
      : undefined;
  try {
    await (deadline ? Promise.race([Promise.any(attempts), deadline]) : Promise.any(attempts));
  } catch {
    for (const connection of idle) connection.halt();
    throw failureOf(connections, waitMs);
  } finally {
    clearTimeout(timer);
    // The losers of the race settle later: their rejections are expected.
    for (const attempt of attempts) attempt.catch(() => undefined);
  }
}

function failureOf(connections: readonly GearmanConnection[], waitMs: number): GearmanConnectionError {
  const failures = connections.map(
    (connection) =>
      connection.lastError ?? new GearmanConnectionError(`Cannot connect to ${connection.label}`, connection.label, { code: 'ETIMEDOUT' }),
  );
  const after = waitMs > 0 ? ` (kept trying for up to ${waitMs} ms)` : '';
  if (failures.length === 1) {
    const [failure] = failures;
    if (!after) return failure;
    return new GearmanConnectionError(`${failure.message}${after}`, failure.server, {
      cause: failure.cause ?? failure,
      code: failure.code,
    });
  }
  return new GearmanConnectionError(
    `Cannot connect to any job server${after}: ${failures.map((failure) => failure.message).join('; ')}`,
    undefined,
    // Every server failed: the first one's code, so that ECONNREFUSED everywhere reads as ECONNREFUSED.
    { cause: new AggregateError(failures), code: failures[0].code },
  );
}
