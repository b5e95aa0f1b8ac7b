/** gearmand's port, and the one every client, worker and job server here uses unless told otherwise. */
export const DEFAULT_GEARMAN_PORT = 4730;

/** Where a job server listens, and where clients look for one, unless told otherwise: loopback only. */
export const DEFAULT_GEARMAN_HOST = '127.0.0.1';
