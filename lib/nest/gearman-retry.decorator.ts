import { PATTERN_EXTRAS_METADATA } from './gearman-job-timeout.decorator.js';
import { checkRetryOptions, type GearmanRetryOptions } from './retry-policy.js';

/** The extras key `ServerGearman` reads a pattern's retry policy from. */
export const RETRY_EXTRA = 'retry';

/**
 * The retry policy of one `@EventPattern` handler: a job whose handler throws runs again, up to
 * `attempts` runs in all, after the back-off (see `GearmanRetryOptions`); a caller's `setRetry()`
 * wins over it. The same as `@EventPattern(pattern, { retry })`. Put it above the pattern decorator,
 * as `@GearmanJobTimeout`.
 *
 * ```ts
 * @GearmanRetry({ attempts: 5, backoff: { type: 'exponential', delayMs: 1000, jitter: 0.3 } })
 * @EventPattern<string>('mail.send')
 * send(@Payload() mail: Mail) { … }
 * ```
 */
export function GearmanRetry(retry: GearmanRetryOptions): MethodDecorator {
  const checked = checkRetryOptions(retry, 'GearmanRetry()');
  return (_target, _key, descriptor) => {
    const handler = descriptor.value as object;
    const extras = (Reflect.getMetadata(PATTERN_EXTRAS_METADATA, handler) ?? {}) as Record<string, unknown>;
    Reflect.defineMetadata(PATTERN_EXTRAS_METADATA, { ...extras, [RETRY_EXTRA]: checked }, handler);
    return descriptor;
  };
}
