import type { BrokerPeer } from './broker-peer.js';
import type { Priority } from './job.js';

/**
 * The seam through which features that follow jobs plug into the job server's core: a durable
 * queue (store background jobs before JOB_CREATED, delete them when they end, replay them at
 * start with JobBroker.restore), stored results (each job's outcome), metrics (count the events).
 * The broker calls each hook synchronously, at the moment described, with nothing of its own
 * pending; the default is no lifecycle at all, which costs the broker one property check per event.
 *
 * Byte strings: names, unique ids and payloads are latin1 strings, one character a byte
 * (`Buffer.from(text, 'latin1')` gives the bytes back). Buffers handed to a hook may view the
 * socket chunk they arrived in: copy what you keep past the call.
 *
 * A hook that throws is a bug in it: the broker reports it as a warning and goes on.
 */
export interface JobLifecycle {
  /**
   * A submit created a new job (not one that joined an existing job): it is queued, or waits for
   * `runAt`, and workers may already take it; its JOB_CREATED is not sent yet. A returned promise
   * holds that JOB_CREATED, and every later packet to the submitting connection, until it
   * settles; when it rejects, the submitter gets ERROR QUEUE_ERROR instead and the job is
   * cancelled (`ended` with `cancelled`). Not called for jobs put back by JobBroker.restore.
   */
  accepted?(job: JobView, runAt: number): PromiseLike<void> | void;
  /** A submit matched an existing job (coalescing on the unique id) and joined it; `background` is the submit's. */
  joined?(job: JobView, background: boolean): void;
  /** A worker took the job (JOB_ASSIGN, JOB_ASSIGN_UNIQ or JOB_ASSIGN_ALL is being sent). */
  started?(job: JobView, worker: BrokerPeer): void;
  /** The job's worker sent WORK_DATA, WORK_WARNING or WORK_STATUS, before it is relayed to the clients. */
  progressed?(job: JobView, update: WorkUpdate): void;
  /** The job's worker lost it and it went back to the tail of its queue, one retry more (`job.retries` counts it). */
  requeued?(job: JobView, reason: RequeueReason): void;
  /**
   * The job is gone for good: called once for every job that `accepted` or `restore` brought in,
   * at the moment it leaves. Not called when the server closes: what is queued then stays in a
   * durable store, to be restored.
   */
  ended?(job: JobView, end: JobEnd): void;
}

/** A job as lifecycle hooks see it (a snapshot taken for the call). */
export interface JobView {
  /** The broker's number for it: unique while the server runs, increasing; a restored job gets a new one. */
  readonly id: number;
  /** Unique while the server runs; a restored job gets a new one. */
  readonly handle: string;
  readonly functionName: string;
  readonly unique: string;
  readonly data: string;
  readonly priority: Priority;
  readonly background: boolean;
  /** Times a worker lost it. */
  readonly retries: number;
  /** When the server created it, ms since the epoch (a restored job: when it was put back). */
  readonly createdAt: number;
}

export type WorkUpdate =
  | { readonly kind: 'data'; readonly data: Buffer }
  | { readonly kind: 'warning'; readonly data: Buffer }
  /** As gearmand stores them (GET_STATUS reports these): `(uint32_t)atoi` of the numerator and of the denominator's first 10 bytes. */
  | { readonly kind: 'status'; readonly numerator: number; readonly denominator: number };

export type JobOutcome =
  /** WORK_COMPLETE with its payload; any WORK_DATA parts before it came through `progressed`. */
  | { readonly kind: 'complete'; readonly data: Buffer }
  /** WORK_FAIL from its worker. */
  | { readonly kind: 'fail' }
  /** WORK_EXCEPTION from its worker, with its payload. */
  | { readonly kind: 'exception'; readonly data: Buffer }
  /** Its workers lost it `jobRetries` times; its clients got WORK_FAIL. */
  | { readonly kind: 'retries-exhausted' }
  /** Admin `cancel job` or `drop function`, or the store refused it (`accepted` rejected); its clients got WORK_FAIL. */
  | { readonly kind: 'cancelled' }
  /** A foreground job every client left before it finished running, dropped unrun (or when its worker lost it). */
  | { readonly kind: 'abandoned' };

export interface JobEnd {
  readonly outcome: JobOutcome;
  /** Progress of its last run as stored (see WorkUpdate); 0 and 0 when it never reported any. */
  readonly numerator: number;
  readonly denominator: number;
  /** Date.now() when it ended. */
  readonly endedAt: number;
}

/** Why a worker lost a job: it disconnected, gave the function up (CANT_DO, RESET_ABILITIES), or its CAN_DO_TIMEOUT expired. */
export type RequeueReason = 'worker-gone' | 'cant-do' | 'timeout';

/**
 * One lifecycle that calls several in order (a durable store, a results store and metrics at
 * once). JOB_CREATED waits for every `accepted` promise; the first rejection refuses the job.
 */
export function combineLifecycles(...lifecycles: JobLifecycle[]): JobLifecycle {
  return {
    accepted(job, runAt) {
      const pending: PromiseLike<void>[] = [];
      for (const lifecycle of lifecycles) {
        const result = lifecycle.accepted?.(job, runAt);
        if (result) pending.push(result);
      }
      return pending.length === 0 ? undefined : Promise.all(pending).then(() => undefined);
    },
    joined: (job, background) => lifecycles.forEach((lifecycle) => lifecycle.joined?.(job, background)),
    started: (job, worker) => lifecycles.forEach((lifecycle) => lifecycle.started?.(job, worker)),
    progressed: (job, update) => lifecycles.forEach((lifecycle) => lifecycle.progressed?.(job, update)),
    requeued: (job, reason) => lifecycles.forEach((lifecycle) => lifecycle.requeued?.(job, reason)),
    ended: (job, end) => lifecycles.forEach((lifecycle) => lifecycle.ended?.(job, end)),
  };
}
