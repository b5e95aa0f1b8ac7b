export * from './protocol/index.js';
export * from './connection/index.js';
export * from './client/index.js';
export * from './worker/index.js';
export * from './job-server/index.js';
export * from './nest/index.js';
export * from './nest/module/index.js';
