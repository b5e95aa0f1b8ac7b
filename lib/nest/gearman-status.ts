/** What `status` emits on `ServerGearman` and `ClientGearman`. */
export enum GearmanStatus {
  CONNECTED = 'connected',
  DISCONNECTED = 'disconnected',
  RECONNECTING = 'reconnecting',
}

/** The events `on()` forwards from the underlying `GearmanWorker` / `GearmanClient`. */
export enum GearmanEvents {
  /** A job server connection is up; the listener gets the server as `host:port`. */
  CONNECT = 'connect',
  /** A job server connection dropped; the listener gets the server and the error, if any. */
  DISCONNECT = 'disconnect',
  /** A reconnect is scheduled; the listener gets the server and the delay in ms. */
  RECONNECTING = 'reconnecting',
  ERROR = 'error',
}

/** Listener signatures for `on()`, keyed by event. */
export type GearmanEventsMap = {
  connect: (server: string) => void;
  disconnect: (server: string, error?: Error) => void;
  reconnecting: (server: string, delayMs: number) => void;
  error: (error: Error) => void;
};

/** The transport id `ServerGearman` sets: `@MessagePattern(p, GEARMAN_TRANSPORT)` binds a handler to it alone. */
export const GEARMAN_TRANSPORT: unique symbol = Symbol('GEARMAN_TRANSPORT');
