/** gearmand's port, and the one every client, worker and job server here uses unless told otherwise. */
export const DEFAULT_GEARMAN_PORT = 4730;

/** Where a job server listens, and where clients look for one, unless told otherwise: loopback only. */
export const DEFAULT_GEARMAN_HOST = '127.0.0.1';

/** Bytes a client or worker keeps in memory for one connection whose job server reads slower than it writes. */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;
