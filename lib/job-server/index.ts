export { GearmanJobServer, JOB_SERVER_VERSION } from './gearman-job-server.js';
export type { GearmanJobServerOptions } from './gearman-job-server.js';
