export * from '../common/errors.js';
export * from '../common/logger.js';
export * from './job-status.js';
export * from './submit-options.js';
export * from './client-job.js';
export * from './gearman-client.js';
