import { BATCH_CANCEL_FUNCTION, BATCH_FUNCTION } from '../protocol/batch.js';
import { encodeByteStringResponse } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import {
  decodeResultRequest,
  encodeResultReply,
  formatResultRefusal,
  RESULT_FUNCTION,
  RESULT_NOW_FUNCTION,
  type JobStateRecord,
  type ResultRefusalCode,
} from '../protocol/result-fetch.js';
import type { BatchCoordinator } from './batch-coordinator.js';
import type { BrokerPeer } from './broker-peer.js';
import type { SubmitRequest } from './job-broker.js';
import type { JobListener, JobResults, JobState } from './job-results.js';
import type { WorkUpdate } from './job-lifecycle.js';

/** The functions the server answers itself; a worker registering one of them never gets its jobs here. */
export const RESERVED_FUNCTIONS: readonly string[] = [RESULT_FUNCTION, RESULT_NOW_FUNCTION, BATCH_FUNCTION, BATCH_CANCEL_FUNCTION];

const EMPTY = Buffer.alloc(0);

/** A byte string (latin1) as the text a JSON record carries. */
function text(bytes: string): string {
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/**
 * Submits to the reserved functions, answered by the server itself: `gearman.result` and
 * `gearman.result.nowait` (fetching a job's state, see lib/protocol/result-fetch.ts), `gearman.batch`
 * (a background batch, handed to the BatchCoordinator) and `gearman.batch.cancel`. A fetch is a
 * foreground job of its own: JOB_CREATED with a handle of its own (`<prefix>:R<n>`), then the
 * answer on that handle.
 */
export class ReservedFunctions {
  private nextFetch = 1;
  /** Fetches still waiting, by the peer that asked: stopped when it leaves. */
  private readonly waiting = new Map<BrokerPeer, Set<() => void>>();

  constructor(
    private readonly results: JobResults,
    private readonly batches: BatchCoordinator,
    /** `<prefix>:`, a byte string. */
    private readonly handleStart: string,
  ) {}

  /** Answers a submit to a reserved function; false when the function is not one. */
  submit(peer: BrokerPeer, request: SubmitRequest): boolean {
    switch (request.functionName) {
      case RESULT_FUNCTION:
      case RESULT_NOW_FUNCTION:
        if (this.foregroundOnly(peer, request)) this.fetch(peer, request);
        return true;
      case BATCH_FUNCTION:
        if (!request.background) {
          peer.send(encodeByteStringResponse(PacketType.ERROR, ['RESERVED_FUNCTION', `${BATCH_FUNCTION} takes background submits only`]));
        } else this.batches.submit(peer, request);
        return true;
      case BATCH_CANCEL_FUNCTION:
        if (this.foregroundOnly(peer, request)) {
          const handle = this.fetchHandle(peer);
          const cancelled = this.batches.cancel(request.data.replace(/\r?\n$/, ''));
          peer.send(encodeByteStringResponse(PacketType.WORK_COMPLETE, [handle, cancelled ? '1' : '0']));
        }
        return true;
      default:
        return false;
    }
  }

  /** A peer left: its fetches stop waiting. */
  peerGone(peer: BrokerPeer): void {
    const stops = this.waiting.get(peer);
    if (!stops) return;
    this.waiting.delete(peer);
    for (const stop of stops) stop();
  }

  private foregroundOnly(peer: BrokerPeer, request: SubmitRequest): boolean {
    if (!request.background) return true;
    peer.send(encodeByteStringResponse(PacketType.ERROR, ['RESERVED_FUNCTION', `${request.functionName} takes foreground submits only`]));
    return false;
  }

  private fetchHandle(peer: BrokerPeer): string {
    const handle = `${this.handleStart}R${this.nextFetch++}`;
    peer.send(encodeByteStringResponse(PacketType.JOB_CREATED, [handle]));
    return handle;
  }

  private fetch(peer: BrokerPeer, request: SubmitRequest): void {
    const handle = this.fetchHandle(peer);
    const decoded = decodeResultRequest(Buffer.from(request.data, 'latin1'), request.functionName === RESULT_FUNCTION);
    if ('malformed' in decoded) return this.refuse(peer, handle, 'MALFORMED', undefined, decoded.malformed);
    const machine = decoded.form === 'machine';
    const wait = machine ? decoded.request.wait : decoded.wait;
    // The plain form follows the job as `gearman` prints a foreground job: progress, warnings and data as they come.
    const follow = machine ? decoded.request.follow : true;
    const state = this.results.stateOf(decoded.id);
    const answer = new Answer(peer, handle, machine, follow);
    if (state.kind !== 'live') return answer.final(state, decoded.id);
    if (!wait) {
      if (machine) return answer.record(state);
      return this.refuse(
        peer,
        handle,
        state.running ? 'RUNNING' : 'QUEUED',
        decoded.id,
        state.running ? `still running (${state.numerator}/${state.denominator})` : 'still queued',
      );
    }
    if (follow) {
      // Where the job is now, then what it sends from here on.
      if (state.numerator !== 0 || state.denominator !== 0)
        answer.update({ kind: 'status', numerator: state.numerator, denominator: state.denominator });
      for (const part of state.parts) answer.data(part);
    }
    this.await(peer, answer, state.handle, decoded.id, machine ? decoded.request.timeoutMs : undefined);
  }

  /**
   * Waits for the job under `jobHandle` to end (or for `timeoutMs`), relaying its updates when
   * following. A job being retried goes on in its next attempt: the wait follows it there.
   */
  private await(peer: BrokerPeer, answer: Answer, jobHandle: string, id: string, timeoutMs: number | undefined): void {
    let timer: NodeJS.Timeout | undefined;
    let watched = jobHandle;
    const stops = this.waiting.get(peer) ?? new Set<() => void>();
    this.waiting.set(peer, stops);
    const stop = () => {
      if (timer) clearTimeout(timer);
      this.results.unlisten(watched, listener);
      stops.delete(stop);
      if (stops.size === 0 && this.waiting.get(peer) === stops) this.waiting.delete(peer);
    };
    const listener: JobListener = {
      update: (update) => answer.update(update),
      ended: () => {
        const state = this.results.stateOf(id);
        if (state.kind === 'live' && state.handle !== watched) {
          // Retried: the next attempt runs under a handle of its own.
          this.results.unlisten(watched, listener);
          watched = state.handle;
          this.results.listen(watched, listener);
          return;
        }
        stop();
        // The handle is gone and the id named a foreground job (not kept): look it up under its handle.
        answer.final(state.kind === 'live' ? this.results.stateOf(watched) : state, id);
      },
    };
    stops.add(stop);
    this.results.listen(watched, listener);
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        stop();
        answer.record(this.results.stateOf(id));
      }, timeoutMs);
      timer.unref?.();
    }
  }

  private refuse(peer: BrokerPeer, handle: string, code: ResultRefusalCode, id: string | undefined, detail: string): void {
    refuse(peer, handle, formatResultRefusal(code, id === undefined ? undefined : text(id), detail));
  }
}

/** A fetch's reply, packet by packet, on the fetch's own handle. */
class Answer {
  private sentParts = 0;

  constructor(
    private readonly peer: BrokerPeer,
    private readonly handle: string,
    private readonly machine: boolean,
    private readonly follow: boolean,
  ) {}

  data(part: Buffer | string): void {
    this.sentParts++;
    this.peer.send(encodeByteStringResponse(PacketType.WORK_DATA, [this.handle, part]));
  }

  update(update: WorkUpdate): void {
    if (!this.follow) return;
    if (update.kind === 'data') return this.data(update.data);
    if (update.kind === 'warning') return this.peer.send(encodeByteStringResponse(PacketType.WORK_WARNING, [this.handle, update.data]));
    this.peer.send(encodeByteStringResponse(PacketType.WORK_STATUS, [this.handle, String(update.numerator), String(update.denominator)]));
  }

  /** The machine form's state record as WORK_COMPLETE, after the parts not sent yet of an ended job. */
  record(state: JobState): void {
    let payload: Buffer = EMPTY;
    if (state.kind === 'stored') {
      const { result } = state;
      for (const part of result.parts.slice(this.sentParts)) this.data(part);
      payload = Buffer.from(result.payload, 'latin1');
    }
    this.peer.send(encodeByteStringResponse(PacketType.WORK_COMPLETE, [this.handle, encodeResultReply(recordOf(state), payload)]));
  }

  /** An ended (or unknown) job: the machine form's record, or the plain form's replay of how the job ended. */
  final(state: JobState, id: string): void {
    if (this.machine || state.kind === 'live') return this.record(state);
    if (state.kind === 'unknown') {
      const line =
        state.reason === 'expired'
          ? formatResultRefusal('EXPIRED', text(id), 'its result was dropped by retention (age, count or bytes)')
          : formatResultRefusal('UNKNOWN', text(id), 'no job or kept result by this handle or unique id here (foreground jobs keep none)');
      return refuse(this.peer, this.handle, line);
    }
    const { result } = state;
    for (const part of result.parts.slice(this.sentParts)) this.data(part);
    if (result.outcome === 'complete') {
      this.peer.send(encodeByteStringResponse(PacketType.WORK_COMPLETE, [this.handle, result.payload]));
    } else if (result.outcome === 'exception' && this.peer.exceptions) {
      this.peer.send(encodeByteStringResponse(PacketType.WORK_EXCEPTION, [this.handle, result.payload]));
    } else {
      this.peer.send(encodeByteStringResponse(PacketType.WORK_FAIL, [this.handle]));
    }
  }
}

/** A plain-form failure: the reason as WORK_WARNING, then WORK_EXCEPTION with it (WORK_FAIL for a peer without the option). */
function refuse(peer: BrokerPeer, handle: string, line: string): void {
  peer.send(encodeByteStringResponse(PacketType.WORK_WARNING, [handle, line]));
  peer.send(
    peer.exceptions
      ? encodeByteStringResponse(PacketType.WORK_EXCEPTION, [handle, line])
      : encodeByteStringResponse(PacketType.WORK_FAIL, [handle]),
  );
}

/** The state record a machine-form reply carries. */
export function recordOf(state: JobState): JobStateRecord {
  if (state.kind === 'unknown') return { state: 'unknown', reason: state.reason };
  if (state.kind === 'live') {
    return {
      state: state.running ? 'running' : 'queued',
      handle: text(state.handle),
      unique: text(state.unique),
      function: text(state.functionName),
      numerator: state.numerator,
      denominator: state.denominator,
      createdAt: state.createdAt,
      batch: state.batch,
    };
  }
  const { result } = state;
  return {
    state: result.outcome === 'complete' ? 'completed' : 'failed',
    handle: text(result.handle),
    unique: text(result.unique),
    function: text(result.functionName),
    numerator: result.numerator,
    denominator: result.denominator,
    parts: result.parts.length,
    createdAt: result.createdAt,
    endedAt: result.endedAt,
    failure: result.outcome === 'complete' ? undefined : result.outcome,
    dropped: result.dropped || undefined,
    batch: result.batch,
  };
}
