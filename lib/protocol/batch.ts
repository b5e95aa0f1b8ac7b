import { isUtf8 } from 'node:buffer';
import { isEnvelope, openEnvelope, sealEnvelope } from './envelope.js';

/**
 * A background batch: one submission of many items, coordinated where the batch lives (this
 * package's job server, or the workers of a gearmand deployment with a result store), not by the
 * caller. It is an ordinary background job of the reserved function `gearman.batch`, whose unique
 * id names the batch and whose handle is the batch's handle; its payload is a job envelope:
 *
 *     metadata  {"function": F, "count": N, "failFast": bool, "gather"?: G, "priority"?: P, "concurrency"?: C}
 *     payload   N items, each a 4-byte big-endian length followed by that many bytes
 *
 * Item i runs as a background job of F with the unique id `<batch unique>/<i>`. When every item
 * has ended (or, with `failFast`, when one failed) the outcomes are gathered in order into a JSON
 * array (see {@link encodeBatchOutcomes}); with a `gather` function G that array is the payload of
 * one more job of G (unique `<batch unique>/gather`) whose result is the batch's result, otherwise
 * the array itself is.
 */
export const BATCH_FUNCTION = 'gearman.batch';

/**
 * Cancels a batch: a foreground job whose payload is the batch's handle or unique id. The batch
 * fails and its items not started yet never run; the reply is `1`, or `0` when the batch had ended
 * or is unknown.
 */
export const BATCH_CANCEL_FUNCTION = 'gearman.batch.cancel';

/** A batch's unique id leaves room for `/<index>` within the 64 bytes of a unique id. */
export const MAX_BATCH_UNIQUE_BYTES = 48;

/** A batch's unique id as a caller gives it: 1-48 bytes of UTF-8 without NUL. Throws TypeError otherwise. */
export function checkBatchUnique(unique: unknown): string {
  if (typeof unique !== 'string' || unique.length === 0 || Buffer.byteLength(unique) > MAX_BATCH_UNIQUE_BYTES || unique.includes('\0')) {
    throw new TypeError(`A batch's unique id is 1-${MAX_BATCH_UNIQUE_BYTES} bytes without NUL, got ${JSON.stringify(unique)}`);
  }
  return unique;
}

export type BatchPriority = 'high' | 'normal' | 'low';

export interface BatchRequest {
  /** The function every item is a job of. */
  readonly function: string;
  /** The function that receives the ordered outcomes; its result becomes the batch's. */
  readonly gather?: string;
  /** Fail the batch at the first failed item (the rest are not run) rather than gathering the failures too. */
  readonly failFast: boolean;
  /** Priority of the item jobs (and of the gather job); default normal. */
  readonly priority?: BatchPriority;
  /** At most this many items queued or running at once; default all of them. */
  readonly concurrency?: number;
}

export class BatchRequestError extends Error {
  override readonly name = 'BatchRequestError';
}

/** The payload of a `gearman.batch` submission. Throws BatchRequestError on a bad request. */
export function encodeBatchRequest(request: BatchRequest, items: readonly Buffer[]): Buffer {
  checkRequest(request);
  const sizes = items.reduce((total, item) => total + 4 + item.length, 0);
  const packed = Buffer.allocUnsafe(sizes);
  let offset = 0;
  for (const item of items) {
    packed.writeUInt32BE(item.length, offset);
    item.copy(packed, offset + 4);
    offset += 4 + item.length;
  }
  const metadata: Record<string, unknown> = { function: request.function, count: items.length, failFast: request.failFast };
  if (request.gather !== undefined) metadata.gather = request.gather;
  if (request.priority !== undefined) metadata.priority = request.priority;
  if (request.concurrency !== undefined) metadata.concurrency = request.concurrency;
  return sealEnvelope(metadata, packed);
}

/** Reads a `gearman.batch` payload. Throws BatchRequestError saying what is wrong. */
export function decodeBatchRequest(payload: Buffer): { request: BatchRequest; items: Buffer[] } {
  if (!isEnvelope(payload)) throw new BatchRequestError('A batch is a job envelope of its options and items (see the docs)');
  let opened;
  try {
    opened = openEnvelope(payload)!;
  } catch (error) {
    throw new BatchRequestError((error as Error).message);
  }
  const { function: fn, gather, failFast, priority, concurrency, count } = opened.metadata;
  const request: BatchRequest = {
    function: fn as string,
    failFast: failFast as boolean,
    ...(gather === undefined ? {} : { gather: gather as string }),
    ...(priority === undefined ? {} : { priority: priority as BatchPriority }),
    ...(concurrency === undefined ? {} : { concurrency: concurrency as number }),
  };
  checkRequest(request);
  if (!Number.isInteger(count) || (count as number) < 0) throw new BatchRequestError('count must be a whole number ≥ 0');
  const items: Buffer[] = [];
  const packed = opened.payload;
  let offset = 0;
  while (offset < packed.length) {
    if (offset + 4 > packed.length) throw new BatchRequestError('The items end inside a length');
    const length = packed.readUInt32BE(offset);
    if (offset + 4 + length > packed.length) throw new BatchRequestError(`Item ${items.length} runs past the end of the payload`);
    items.push(packed.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  if (items.length !== count) throw new BatchRequestError(`The batch says ${String(count)} items but holds ${items.length}`);
  return { request, items };
}

function checkRequest(request: BatchRequest): void {
  const name = (value: unknown) => typeof value === 'string' && value.length > 0 && !value.includes('\0');
  if (!name(request.function)) throw new BatchRequestError('function must be a non-empty function name');
  if (request.gather !== undefined && !name(request.gather)) throw new BatchRequestError('gather must be a non-empty function name');
  if (typeof request.failFast !== 'boolean') throw new BatchRequestError('failFast must be true or false');
  if (request.priority !== undefined && !['high', 'normal', 'low'].includes(request.priority)) {
    throw new BatchRequestError(`priority must be high, normal or low, got ${JSON.stringify(request.priority)}`);
  }
  if (request.concurrency !== undefined && (!Number.isInteger(request.concurrency) || request.concurrency < 1)) {
    throw new BatchRequestError(`concurrency must be a whole number ≥ 1, got ${String(request.concurrency)}`);
  }
}

/** The unique id of item `index` of a batch, and of its gather job. */
export function batchItemUnique(batchUnique: string, index: number | 'gather'): string {
  return `${batchUnique}/${index}`;
}

/** How one item ended. */
export type BatchItemOutcome =
  | { readonly kind: 'complete'; readonly data: Buffer }
  | { readonly kind: 'exception'; readonly data: Buffer }
  /** WORK_FAIL, or lost: retries used up, cancelled. `reason` says which, for the gathered error. */
  | { readonly kind: 'fail'; readonly reason?: string };

/**
 * The gathered outcomes, in item order, as the JSON array the gather function (or the batch's
 * result) carries: `{"index":i,"value":v}` for a completed item, `{"index":i,"error":e}` for a
 * failed one. A value (or a WORK_EXCEPTION payload as `error`) is the item's payload read by the
 * transport's payload rules: JSON as is, other UTF-8 text as a JSON string, other bytes as
 * `{"type":"Buffer","data":[…]}`, nothing as an absent `value`. A WORK_FAIL is
 * `{"code":"JOB_FAILED","message":…}`.
 */
export function encodeBatchOutcomes(outcomes: readonly BatchItemOutcome[]): Buffer {
  const parts = outcomes.map((outcome, index) => {
    if (outcome.kind === 'fail') {
      const message = outcome.reason ?? `Batch item ${index} failed`;
      return `{"index":${index},"error":${JSON.stringify({ code: 'JOB_FAILED', message })}}`;
    }
    const value = payloadAsJson(outcome.data);
    const field = outcome.kind === 'complete' ? 'value' : 'error';
    return value === undefined ? `{"index":${index}}` : `{"index":${index},"${field}":${value}}`;
  });
  return Buffer.from(`[${parts.join(',')}]`, 'utf8');
}

/** A payload as JSON text by the payload rules; undefined for an empty one. */
function payloadAsJson(data: Buffer): string | undefined {
  if (data.length === 0) return undefined;
  if (!isUtf8(data)) return JSON.stringify({ type: 'Buffer', data: [...data] });
  const text = data.toString('utf8');
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}
