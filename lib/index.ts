export * from './protocol/index.js';
export * from './connection/index.js';
// client and worker: lib/client, lib/worker
// job server: lib/job-server
export * from './job-server/index.js';
// nest: lib/nest
