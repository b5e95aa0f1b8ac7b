export * from './gearman-status.js';
export * from './gearman-record-builder.js';
export * from './gearman.context.js';
export * from './payload-codec.js';
export * from './server-gearman.js';
export * from './client-gearman.js';
