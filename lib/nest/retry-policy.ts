import { createHash } from 'node:crypto';

/**
 * Retries of background jobs whose handler threw (gearmand never retries those; its `--job-retries`
 * counts only workers that vanished). Opt-in, per call (`GearmanRecordBuilder.setRetry`) or per
 * pattern (`@EventPattern(name, { retry })`).
 *
 * How: the worker whose handler threw submits the next attempt as a new background job — an epoch
 * job when it waits — and only then ends the failed one. The attempt number, the policy and the
 * first attempt's unique id and handle travel in the job envelope. Each attempt's unique id is
 * derived from the first one (`retryUnique`), so a failed attempt that runs again (its worker died
 * after submitting the retry) submits the same id and joins the pending retry instead of adding one.
 * Being ordinary background jobs, pending retries are kept by any persistent queue (ours or gearmand's).
 */
export interface GearmanRetryOptions {
  /** Runs in all, the first included: 3 = the first run and at most two retries. At least 1. */
  attempts: number;
  /** Wait before each retry; default none (the retry is queued at once). */
  backoff?: GearmanBackoff;
}

export interface GearmanBackoff {
  /** 'fixed': `delayMs` every time; 'exponential': `delayMs · 2^(n−1)` before retry n. */
  type: 'fixed' | 'exponential';
  /** Milliseconds. Job servers schedule in whole seconds: a wait rounds up to the next second. */
  delayMs: number;
  /** 0 (default) to 1: up to this fraction of the wait is taken off at random, so that retries spread out. */
  jitter?: number;
  /** Cap on one wait; default one day. */
  maxDelayMs?: number;
}

/** What the envelope's `retry` field holds, for each attempt. */
export interface RetryEnvelope {
  readonly attempts: number;
  readonly backoff?: GearmanBackoff;
  /** This run's number, 1 for the first. */
  readonly attempt: number;
  /** The first attempt's unique id and handle: the name of the job across its attempts. Set from the second attempt on. */
  readonly origin?: { readonly unique: string; readonly handle: string };
}

export const MAX_RETRY_ATTEMPTS = 1000;
const DEFAULT_MAX_DELAY_MS = 24 * 3600 * 1000;
const MAX_UNIQUE_BYTES = 64;

/** Checks retry options; throws TypeError naming what is wrong. */
export function checkRetryOptions(options: GearmanRetryOptions, where: string): GearmanRetryOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`${where}: retry options must be an object`);
  const { attempts, backoff } = options;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > MAX_RETRY_ATTEMPTS) {
    throw new TypeError(`${where}: retry attempts must be a whole number from 1 to ${MAX_RETRY_ATTEMPTS}, got ${String(attempts)}`);
  }
  if (backoff === undefined) return { attempts };
  if (backoff.type !== 'fixed' && backoff.type !== 'exponential') {
    throw new TypeError(`${where}: backoff type must be 'fixed' or 'exponential', got ${JSON.stringify(backoff.type)}`);
  }
  const number = (name: string, value: unknown, max: number) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
      throw new TypeError(`${where}: backoff ${name} must be a number from 0 to ${max}, got ${String(value)}`);
    }
  };
  number('delayMs', backoff.delayMs, DEFAULT_MAX_DELAY_MS * 365);
  if (backoff.jitter !== undefined) number('jitter', backoff.jitter, 1);
  if (backoff.maxDelayMs !== undefined) number('maxDelayMs', backoff.maxDelayMs, DEFAULT_MAX_DELAY_MS * 365);
  const checked: GearmanBackoff = { type: backoff.type, delayMs: backoff.delayMs };
  if (backoff.jitter !== undefined) checked.jitter = backoff.jitter;
  if (backoff.maxDelayMs !== undefined) checked.maxDelayMs = backoff.maxDelayMs;
  return { attempts, backoff: checked };
}

/** The wait before the attempt after `failedAttempt` (1-based). `random` is in [0, 1). */
export function retryDelayMs(backoff: GearmanBackoff | undefined, failedAttempt: number, random: number = Math.random()): number {
  if (!backoff) return 0;
  const base = backoff.type === 'fixed' ? backoff.delayMs : backoff.delayMs * 2 ** (failedAttempt - 1);
  const capped = Math.min(base, backoff.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
  return Math.round(capped * (1 - (backoff.jitter ?? 0) * random));
}

/**
 * The unique id of attempt `attempt` (≥ 2) of the job first submitted under `origin`:
 * `<origin>#<attempt>`, or, when that would pass the protocol's 64 bytes, `#<sha1 of origin>#<attempt>`.
 */
export function retryUnique(origin: string, attempt: number): string {
  const plain = `${origin}#${attempt}`;
  if (Buffer.byteLength(plain) <= MAX_UNIQUE_BYTES) return plain;
  return `#${createHash('sha1').update(origin).digest('hex')}#${attempt}`;
}

/** The envelope's `retry` field, if it is a well-formed one. */
export function readRetryEnvelope(value: unknown): RetryEnvelope | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const fields = value as Record<string, unknown>;
  try {
    const policy = checkRetryOptions(
      { attempts: fields.attempts as number, backoff: fields.backoff as GearmanBackoff | undefined },
      'envelope',
    );
    const attempt = fields.attempt ?? 1;
    if (!Number.isInteger(attempt) || (attempt as number) < 1) return undefined;
    const origin = fields.origin as { unique?: unknown; handle?: unknown } | undefined;
    const validOrigin = origin && typeof origin.unique === 'string' && typeof origin.handle === 'string';
    return {
      ...policy,
      attempt: attempt as number,
      ...(validOrigin ? { origin: { unique: origin.unique as string, handle: origin.handle as string } } : {}),
    };
  } catch {
    return undefined;
  }
}
