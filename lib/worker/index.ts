export * from './worker-job.js';
export * from './gearman-worker.js';
