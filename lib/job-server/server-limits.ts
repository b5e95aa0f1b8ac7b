import { getHeapStatistics } from 'node:v8';

/**
 * What the job server allows one peer, and all of them together, before it refuses, pauses or
 * disconnects: every limit and its default in one place. Each takes 0 for "no limit".
 * docs/security.md explains each one and compares it with gearmand, which has none of them.
 */
export interface JobServerLimits {
  /**
   * Replies owed to one connection (written by the server, not yet taken by the peer) at which the
   * server stops reading from it, until the peer has read them. Default 4 MiB.
   */
  outputBufferSoftBytes: number;
  /**
   * Replies owed to one connection at which it is closed, with a warning in the log: a peer that
   * does not read while others' results keep coming for it. May be passed by one packet (a single
   * large result always goes out). Default 64 MiB.
   */
  outputBufferHardBytes: number;
  /**
   * Packets and admin lines handled for one connection per turn of the event loop while other
   * connections make small reads between its turns; the rest waits while they get theirs. Beside
   * nobody, or beside other bulk senders only, a connection takes 16 times more (ReadTurns), so
   * bulk work is not slowed. Default 8: under a flood of SUBMIT_JOB_BG, the costliest request,
   * from one connection, the others keep about half of their round trips or more.
   */
  framesPerTurn: number;
  /**
   * Jobs of one function queued or running at once (gearmand's `maxqueue`, which the admin
   * command still sets per function); a submit past it gets ERROR QUEUE_ERROR. Default 2,000,000.
   */
  maxQueuedJobsPerFunction: number;
  /**
   * Jobs one connection submitted that are still queued or running; a submit past it gets ERROR
   * QUEUE_ERROR. Default 0 (none): one producer may legitimately queue a large batch.
   */
  maxQueuedJobsPerConnection: number;
  /**
   * The queued jobs' memory, estimated as their unique ids and payloads plus JOB_OVERHEAD_BYTES each;
   * a submit past it gets ERROR QUEUE_ERROR. Default: half of V8's heap limit, so that a queue can
   * never take the process down (Node's heap is 4 GiB on 64-bit machines with 16 GiB or more).
   */
  maxQueuedBytes: number;
  /** Connections open at once; one more is refused with ERROR TOO_MANY_CONNECTIONS. Default 10,000. */
  maxConnections: number;
  /**
   * Connections open at once from one address (IPv4, IPv6; every in-process connection counts as
   * one address). Default 0 (none): every app on one host shares 127.0.0.1.
   */
  maxConnectionsPerAddress: number;
  /**
   * A connection that sent nothing for this long and waits for nothing (no job running for it as
   * a worker, no foreground job it waits for, no function registered) is closed. Default 300,000 ms.
   * A connection whose replies the server cannot write (the peer does not read) for this long is closed too.
   */
  idleTimeoutMs: number;
  /** A packet or admin line that started arriving and is not whole after this long closes its connection. Default 30,000 ms. */
  packetTimeoutMs: number;
}

/** What the `maxQueuedBytes` estimate counts for each job beside its unique id and payload. */
export const JOB_OVERHEAD_BYTES = 160;

/** Every limit's default. */
export function defaultJobServerLimits(): JobServerLimits {
  return {
    outputBufferSoftBytes: 4 * 1024 * 1024,
    outputBufferHardBytes: 64 * 1024 * 1024,
    framesPerTurn: 4,
    maxQueuedJobsPerFunction: 2_000_000,
    maxQueuedJobsPerConnection: 0,
    maxQueuedBytes: Math.floor(getHeapStatistics().heap_size_limit / 2),
    maxConnections: 10_000,
    maxConnectionsPerAddress: 0,
    idleTimeoutMs: 300_000,
    packetTimeoutMs: 30_000,
  };
}

/** Every limit switched off (each 0): gearmand's behaviour, for comparisons. */
export const NO_LIMITS: Readonly<JobServerLimits> = Object.freeze({
  outputBufferSoftBytes: 0,
  outputBufferHardBytes: 0,
  framesPerTurn: 0,
  maxQueuedJobsPerFunction: 0,
  maxQueuedJobsPerConnection: 0,
  maxQueuedBytes: 0,
  maxConnections: 0,
  maxConnectionsPerAddress: 0,
  idleTimeoutMs: 0,
  packetTimeoutMs: 0,
});

/** The defaults with `given` applied; throws RangeError naming a limit that is not a whole number ≥ 0, or an unknown one. */
export function resolveJobServerLimits(given: Partial<JobServerLimits> = {}): JobServerLimits {
  const limits = defaultJobServerLimits();
  for (const [name, value] of Object.entries(given) as [keyof JobServerLimits, number | undefined][]) {
    if (!(name in limits)) throw new RangeError(`limits.${name} is not a job server limit; known: ${Object.keys(limits).join(', ')}`);
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`limits.${name} must be a whole number ≥ 0 (0 = no limit), got ${String(value)}`);
    }
    limits[name] = value;
  }
  if (limits.outputBufferHardBytes > 0 && limits.outputBufferSoftBytes > limits.outputBufferHardBytes) {
    throw new RangeError(
      `limits.outputBufferSoftBytes (${limits.outputBufferSoftBytes}) must not be over limits.outputBufferHardBytes (${limits.outputBufferHardBytes})`,
    );
  }
  return limits;
}
