/**
 * Stable codes of the errors clients and workers raise; match on `error.code`, never on the message.
 * A GearmanServerError carries the job server's own code instead (`QUEUE_ERROR`, `JOB_NOT_FOUND`, ...).
 */
export enum GearmanErrorCode {
  /**
   * A connection failed for a reason that has no system error code: it was closed by us (client
   * closed, worker stopped), the job server broke the protocol, or no job server is connected.
   * A refused, reset or timed-out connection carries the system code instead (see GearmanConnectionError).
   */
  CONNECTION_ERROR = 'CONNECTION_ERROR',
  /** The worker ended the job with WORK_FAIL. */
  JOB_FAILED = 'JOB_FAILED',
  /** The worker ended the job with WORK_EXCEPTION; `data` holds its payload. */
  JOB_EXCEPTION = 'JOB_EXCEPTION',
  /** The caller released the job before it ended. */
  JOB_RELEASED = 'JOB_RELEASED',
  /** The connection's socket is backed up and the requests held for it already fill `maxQueuedBytes`. */
  QUEUE_FULL = 'QUEUE_FULL',
  /** The job ran longer than its timeout and was ended by the worker. */
  JOB_TIMEOUT = 'JOB_TIMEOUT',
  /** A persistent job queue file cannot be used: missing driver, corrupt, locked, or a failed write. */
  QUEUE_STORE_ERROR = 'QUEUE_STORE_ERROR',
  /** An optional peer dependency a chosen feature needs is not installed. */
  MISSING_PEER_DEPENDENCY = 'MISSING_PEER_DEPENDENCY',
  /** A wait for a job's result ran out of time. */
  RESULT_TIMEOUT = 'RESULT_TIMEOUT',
  /** No job server asked keeps results, and no result store is configured. */
  RESULTS_UNAVAILABLE = 'RESULTS_UNAVAILABLE',
  /** Nothing is known of the job asked about (never a background job there, or its result expired). */
  JOB_UNKNOWN = 'JOB_UNKNOWN',
  /** A batch stopped at a failed item (`failFast`). */
  BATCH_FAILED = 'BATCH_FAILED',
}

/** Base of every error the client and worker raise. */
export class GearmanError extends Error {
  override readonly name: string = 'GearmanError';

  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Connecting failed or timed out, the connection dropped, or the client was closed.
 *
 * `code` is the system error code when the connection failed at the socket, as on the errors of
 * Nest's TCP and Redis clients: `ECONNREFUSED` (nothing listens), `ECONNRESET` (the job server
 * reset or closed the connection with requests in flight), `ETIMEDOUT` (the connect took longer
 * than `connectTimeoutMs`), `ENOTFOUND`, `EHOSTUNREACH`, a TLS code, ... Otherwise it is
 * `CONNECTION_ERROR`. `cause` is the error underneath (the socket's own error when there is one).
 */
export class GearmanConnectionError extends GearmanError {
  override readonly name = 'GearmanConnectionError';

  constructor(
    message: string,
    /** The server concerned as `host:port`, when there is one. */
    readonly server?: string,
    options?: { cause?: unknown; code?: string },
  ) {
    super(options?.code ?? GearmanErrorCode.CONNECTION_ERROR, message, options);
  }
}

/** The code a socket error carries (`ECONNREFUSED`, a TLS code, ...), if any. */
export function socketErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.length > 0 ? code : undefined;
}

/** The job server answered a request with an ERROR packet; `code` is the server's code, e.g. `QUEUE_ERROR`. */
export class GearmanServerError extends GearmanError {
  override readonly name = 'GearmanServerError';

  constructor(
    code: string,
    /** The server's text. */
    readonly text: string,
  ) {
    super(code, `Job server error ${code}: ${text}`);
  }
}

/** The worker ended the job with WORK_FAIL (or it failed server-side, e.g. retries exhausted). */
export class GearmanJobFailedError extends GearmanError {
  override readonly name = 'GearmanJobFailedError';

  constructor(
    readonly handle: string,
    readonly functionName: string,
  ) {
    super(GearmanErrorCode.JOB_FAILED, `Job ${handle} (${functionName}) failed`);
  }
}

/** The worker ended the job with WORK_EXCEPTION. */
export class GearmanJobExceptionError extends GearmanError {
  override readonly name = 'GearmanJobExceptionError';

  constructor(
    readonly handle: string,
    readonly functionName: string,
    /** The exception payload exactly as the worker sent it. */
    readonly data: Buffer,
  ) {
    super(GearmanErrorCode.JOB_EXCEPTION, `Job ${handle} (${functionName}) raised an exception: ${data.toString('utf8')}`);
  }
}

/** The caller released the job before it ended; later packets for it were dropped. */
export class GearmanJobReleasedError extends GearmanError {
  override readonly name = 'GearmanJobReleasedError';

  constructor(
    readonly functionName: string,
    readonly handle?: string,
  ) {
    super(GearmanErrorCode.JOB_RELEASED, `Job ${handle ?? '(not created yet)'} (${functionName}) was released before it ended`);
  }
}

/**
 * The job server reads slower than requests are made: the connection's socket is backed up and the
 * requests held in memory for it already fill `maxQueuedBytes`. Nothing was sent; wait for the
 * client's 'drain' event (or until `needsDrain` is false) and submit again.
 */
export class GearmanQueueFullError extends GearmanError {
  override readonly name = 'GearmanQueueFullError';

  constructor(
    /** The server concerned as `host:port`. */
    readonly server: string,
    readonly maxQueuedBytes: number,
  ) {
    super(
      GearmanErrorCode.QUEUE_FULL,
      `The connection to ${server} is backed up and ${maxQueuedBytes} bytes of requests already wait for it`,
    );
  }
}

/**
 * The job ran longer than its timeout: the worker ended it (its handler may still be running; the
 * job's `signal` was aborted) and freed its slot. `ClientGearman` callers get this error; other
 * clients get the WORK_EXCEPTION it was sent as.
 */
export class GearmanJobTimeoutError extends GearmanError {
  override readonly name = 'GearmanJobTimeoutError';

  constructor(
    readonly functionName: string,
    readonly timeoutMs: number,
    readonly handle?: string,
  ) {
    super(GearmanErrorCode.JOB_TIMEOUT, `Job ${handle === undefined ? '' : `${handle} `}(${functionName}) timed out after ${timeoutMs} ms`);
  }
}

/**
 * A persistent job queue cannot be used: the file is corrupt, locked by another process, not
 * gearmand's table layout, or a write failed. The message names the file; the server does not start
 * (or, for a failed write, refuses the job) rather than lose jobs silently.
 */
export class GearmanQueueStoreError extends GearmanError {
  override readonly name = 'GearmanQueueStoreError';

  constructor(
    /** The queue file concerned. */
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(GearmanErrorCode.QUEUE_STORE_ERROR, message, options);
  }
}

/** A feature was asked for whose optional peer dependency is not installed; the message says what to install. */
export class GearmanMissingPeerError extends GearmanError {
  override readonly name = 'GearmanMissingPeerError';

  constructor(
    /** The npm package to install. */
    readonly packageName: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(GearmanErrorCode.MISSING_PEER_DEPENDENCY, message, options);
  }
}

/** A wait for a job's result ran out of time; `lastState` is the state it was in then. */
export class GearmanResultTimeoutError<TState = unknown> extends GearmanError {
  override readonly name = 'GearmanResultTimeoutError';

  constructor(
    /** The handle or unique id waited for. */
    readonly id: string,
    readonly timeoutMs: number,
    /** What the job server (or result store) said last: typically `queued` or `running` with progress. */
    readonly lastState: TState,
  ) {
    super(GearmanErrorCode.RESULT_TIMEOUT, `The job ${id} had not ended after ${timeoutMs} ms`);
  }
}

/** Nothing is known of the job followed: never a background job there, or its result was dropped by retention. */
export class GearmanJobUnknownError extends GearmanError {
  override readonly name = 'GearmanJobUnknownError';

  constructor(
    /** The handle or unique id asked about. */
    readonly id: string,
    readonly reason: 'not-found' | 'expired',
  ) {
    super(
      GearmanErrorCode.JOB_UNKNOWN,
      reason === 'expired' ? `The result of job ${id} has expired` : `No job ${id} is known (nor any stored result of it)`,
    );
  }
}

/**
 * None of the job servers keeps results (gearmand does not): configure a result store, or use a
 * job server of this package.
 */
export class GearmanResultsUnavailableError extends GearmanError {
  override readonly name = 'GearmanResultsUnavailableError';

  constructor(
    /** The servers asked, as `host:port`. */
    readonly servers: string[],
  ) {
    super(
      GearmanErrorCode.RESULTS_UNAVAILABLE,
      `No job server keeps results (${servers.join(', ')} refused the results option; gearmand keeps none): ` +
        'configure a result store (e.g. Redis), or use the job server of nestjs-gearman',
    );
  }
}

/** A batch with `failFast` stopped at a failed item; `error` is that item's error as `send()` reports it. */
export class GearmanBatchError extends GearmanError {
  override readonly name = 'GearmanBatchError';

  constructor(
    /** The failed item's position in the batch. */
    readonly index: number,
    readonly error: unknown,
  ) {
    super(GearmanErrorCode.BATCH_FAILED, `Batch item ${index} failed: ${describe(error)}`, { cause: error });
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
