/**
 * The logger clients, workers and the job server write to. Nest's LoggerService and `console`
 * both fit; `debug` is optional.
 */
export interface GearmanLogger {
  log(message: unknown, ...optionalParams: unknown[]): unknown;
  error(message: unknown, ...optionalParams: unknown[]): unknown;
  warn(message: unknown, ...optionalParams: unknown[]): unknown;
  debug?(message: unknown, ...optionalParams: unknown[]): unknown;
}

/** By default only warnings and errors are printed, each with a prefix naming who speaks. */
export function consoleLogger(prefix?: string): GearmanLogger {
  const tag = (message: unknown) => (prefix === undefined ? message : `[${prefix}] ${String(message)}`);
  return {
    log: () => undefined,
    debug: () => undefined,
    // eslint-disable-next-line no-console
    warn: (message, ...optionalParams) => console.warn(tag(message), ...optionalParams),
    // eslint-disable-next-line no-console
    error: (message, ...optionalParams) => console.error(tag(message), ...optionalParams),
  };
}

/** Warnings and errors to the console, as the client and worker print them. */
export const defaultLogger: GearmanLogger = consoleLogger();

/** Prints nothing. */
export const silentLogger: GearmanLogger = { log: () => undefined, warn: () => undefined, error: () => undefined };
