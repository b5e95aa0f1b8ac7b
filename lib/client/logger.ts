/** The logger clients and workers accept; Nest's LoggerService and `console` both fit. */
export interface GearmanLogger {
  log(message: any, ...args: any[]): any;
  error(message: any, ...args: any[]): any;
  warn(message: any, ...args: any[]): any;
  debug?(message: any, ...args: any[]): any;
}

/** By default only warnings and errors are printed. */
export const defaultLogger: GearmanLogger = {
  log: () => undefined,
  debug: () => undefined,
  warn: (message, ...args) => console.warn(message, ...args),
  error: (message, ...args) => console.error(message, ...args),
};
