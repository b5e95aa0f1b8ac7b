/** Nest's metadata key for a pattern's extras (the third argument of `@MessagePattern`), the same in Nest 11 and 12. */
export const PATTERN_EXTRAS_METADATA = 'microservices:pattern_extras';

/** The extras key `ServerGearman` reads a pattern's job timeout from. */
export const JOB_TIMEOUT_EXTRA = 'jobTimeoutMs';

/**
 * The job timeout of one `@MessagePattern` / `@EventPattern` handler, in ms, overriding the
 * transport's `jobTimeoutMs`; 0 means none. A job still running after it ends with a
 * `GearmanJobTimeoutError` for its caller, its slot is freed and a warning is logged (see
 * `ServerGearman`). The same as `@MessagePattern(pattern, { jobTimeoutMs })`.
 *
 * ```ts
 * @GearmanJobTimeout(30_000)
 * @MessagePattern('reports.build')
 * build(@Payload() request: ReportRequest) { … }
 * ```
 */
export function GearmanJobTimeout(timeoutMs: number): MethodDecorator {
  checkJobTimeout(timeoutMs, 'GearmanJobTimeout()');
  return (_target, _key, descriptor) => {
    const handler = descriptor.value as object;
    const extras = (Reflect.getMetadata(PATTERN_EXTRAS_METADATA, handler) ?? {}) as Record<string, unknown>;
    Reflect.defineMetadata(PATTERN_EXTRAS_METADATA, { ...extras, [JOB_TIMEOUT_EXTRA]: timeoutMs }, handler);
    return descriptor;
  };
}

/** Refuses a job timeout that is not a whole number of ms ≥ 0. */
export function checkJobTimeout(timeoutMs: unknown, where: string): asserts timeoutMs is number {
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 0) {
    throw new TypeError(`${where}: a job timeout must be a whole number of ms ≥ 0 (0: none), got ${String(timeoutMs)}`);
  }
}
