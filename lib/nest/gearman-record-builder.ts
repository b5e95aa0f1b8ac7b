import type { JobPriority } from '../client/submit-options.js';
import { checkRetryOptions, type GearmanRetryOptions } from './retry-policy.js';
import type { GearmanJobMetadata } from './job-metadata.js';

/** Per-message Gearman options, honoured by `ClientGearman.send()` and `emit()` alike. */
export interface GearmanRecordOptions {
  /** Queue priority: `high`, `normal` (default) or `low`. */
  priority?: JobPriority;
  /** Unique id: jobs with the same function and unique id coalesce into one. `'-'` coalesces on the payload. */
  unique?: string;
  /** Run the job at this time (an epoch job, seconds since the epoch when a number). Implies background. */
  runAt?: Date | number;
  /** Submit as a background job even from `send()`: the reply is then the job handle. */
  background?: boolean;
  /**
   * Retry the job when its handler throws (background jobs only; overrides the pattern's own
   * `retry`). Travels in the job envelope, so it reaches Nest workers only.
   */
  retry?: GearmanRetryOptions;
  /**
   * Metadata for the handler (`GearmanContext.getMetadata()`), e.g. a W3C `traceparent`; sent only
   * when the client's `envelope` option covers the function (see ClientGearman).
   */
  metadata?: Readonly<GearmanJobMetadata>;
}

/** The data of one message together with its Gearman options; built by `GearmanRecordBuilder`. */
export class GearmanRecord<TData = unknown> {
  constructor(
    readonly data: TData,
    readonly options: Readonly<GearmanRecordOptions> = {},
  ) {}

  /** True when the job is submitted in the background: asked for, or implied by `runAt`. */
  get isBackground(): boolean {
    return this.options.background === true || this.options.runAt !== undefined;
  }
}

/**
 * Builds a `GearmanRecord`, Nest's record-builder convention (as `RmqRecordBuilder`):
 *
 * ```ts
 * client.send('resize', new GearmanRecordBuilder(image).setPriority('high').setUnique(image.id).build());
 * ```
 */
export class GearmanRecordBuilder<TData = unknown> {
  private options: GearmanRecordOptions = {};

  constructor(private data?: TData) {}

  setPriority(priority: JobPriority): this {
    if (priority !== 'high' && priority !== 'normal' && priority !== 'low') {
      throw new TypeError(`Gearman priority must be 'high', 'normal' or 'low', got ${JSON.stringify(priority)}`);
    }
    this.options = { ...this.options, priority };
    return this;
  }

  setUnique(unique: string): this {
    if (typeof unique !== 'string') throw new TypeError(`Gearman unique id must be a string, got ${typeof unique}`);
    this.options = { ...this.options, unique };
    return this;
  }

  setRunAt(runAt: Date | number): this {
    const time = runAt instanceof Date ? runAt.getTime() : runAt;
    if (typeof time !== 'number' || !Number.isFinite(time)) {
      throw new TypeError(`Gearman runAt must be a valid Date or epoch seconds, got ${String(runAt)}`);
    }
    this.options = { ...this.options, runAt };
    return this;
  }

  /** Retries when the handler throws: `{ attempts, backoff: { type: 'fixed' | 'exponential', delayMs, jitter? } }`. */
  setRetry(retry: GearmanRetryOptions): this {
    this.options = { ...this.options, retry: checkRetryOptions(retry, 'GearmanRecordBuilder.setRetry') };
    return this;
  }

  setBackground(background = true): this {
    this.options = { ...this.options, background };
    return this;
  }

  /** Metadata sent with the job (string values by name), merged into what a dispatch hook sets. */
  setMetadata(metadata: Readonly<GearmanJobMetadata>): this {
    if (metadata === null || typeof metadata !== 'object' || Object.values(metadata).some((value) => typeof value !== 'string')) {
      throw new TypeError('Gearman metadata must be an object of string values');
    }
    this.options = { ...this.options, metadata: { ...metadata } };
    return this;
  }

  setData(data: TData): this {
    this.data = data;
    return this;
  }

  build(): GearmanRecord<TData> {
    return new GearmanRecord(this.data as TData, { ...this.options });
  }
}
