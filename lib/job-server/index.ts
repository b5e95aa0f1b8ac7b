export { GearmanJobServer, JOB_SERVER_VERSION } from './gearman-job-server.js';
export type { GearmanJobServerOptions, JobServerLogger } from './gearman-job-server.js';
