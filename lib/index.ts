// The package's public API, `nestjs-gearman`: a deliberate list, grouped by who needs it. Anything
// not named here is internal and may change in any release. The Gearman wire format (packets,
// encoder, decoder, admin lines, the job envelope) is the separate entry `nestjs-gearman/protocol`
// (lib/protocol/index.ts). test/package/public-api.json records both lists; test/package checks the
// built package against it, so a change here is a visible decision (see CONTRIBUTING.md).

// Nest apps: the module, and the transport it wires (server, client, context, per-message options).
export { GearmanModule } from './nest/module/gearman.module.js';
export type { GearmanMicroserviceOptions } from './nest/module/gearman.module.js';
export type {
  GearmanModuleAsyncOptions,
  GearmanModuleDashboardOptions,
  GearmanModuleFactoryOptions,
  GearmanModuleOptions,
  GearmanOptionsFactory,
} from './nest/module/gearman-module-options.js';
export { GearmanStrategyFactory } from './nest/module/gearman-strategy.factory.js';
export { GearmanHealthIndicator } from './nest/module/gearman-health.indicator.js';
export type {
  GearmanHealthCheckOptions,
  GearmanHealthDetails,
  GearmanHealthResult,
  GearmanServerHealth,
  GearmanWorkerHealth,
} from './nest/module/gearman-health.indicator.js';
export {
  GEARMAN_CLIENT,
  GEARMAN_DASHBOARD,
  GEARMAN_JOB_SERVER,
  GEARMAN_METRICS,
  GEARMAN_MODULE_OPTIONS,
  GEARMAN_SERVERS,
} from './nest/module/gearman.constants.js';
export { ServerGearman } from './nest/server-gearman.js';
export type { GearmanServerOptions } from './nest/server-gearman.js';
export { ClientGearman } from './nest/client-gearman.js';
export type { GearmanBatchOptions, GearmanClientProxyOptions, GearmanEmitBatchOptions, GearmanPattern } from './nest/client-gearman.js';
export type {
  GearmanBatchOutcome,
  GearmanJobEvent,
  GearmanJobProgress,
  GearmanJobState,
  GearmanKnownJob,
} from './nest/gearman-job-state.js';
export { GearmanContext } from './nest/gearman.context.js';
export { GearmanJobTimeout } from './nest/gearman-job-timeout.decorator.js';
export { GearmanRetry } from './nest/gearman-retry.decorator.js';
export type { GearmanJobMetadata, TraceContext } from './nest/job-metadata.js';
export { GearmanRecord, GearmanRecordBuilder } from './nest/gearman-record-builder.js';
export type { GearmanRecordOptions } from './nest/gearman-record-builder.js';
export type { GearmanBackoff, GearmanRetryOptions } from './nest/retry-policy.js';
export { GEARMAN_TRANSPORT, GearmanEvents, GearmanStatus } from './nest/gearman-status.js';
export type { GearmanEventsMap } from './nest/gearman-status.js';
// The JSON payload rules of the transport, for code that works with raw job bytes beside Nest.
export { decodePayload, encodePayload } from './nest/payload-codec.js';

// Errors: every error the package rejects or throws with, each with a stable `code`.
export {
  GearmanConnectionError,
  GearmanError,
  GearmanErrorCode,
  GearmanJobExceptionError,
  GearmanJobFailedError,
  GearmanJobReleasedError,
  GearmanJobTimeoutError,
  GearmanMissingPeerError,
  GearmanJobUnknownError,
  GearmanBatchError,
  GearmanQueueFullError,
  GearmanQueueStoreError,
  GearmanResultTimeoutError,
  GearmanResultsUnavailableError,
  GearmanServerError,
} from './common/errors.js';
export { GearmanProtocolError, ProtocolErrorCode } from './protocol/protocol-error.js';

// Low-level clients and workers, without Nest.
export { GearmanClient } from './client/gearman-client.js';
export type { BackgroundJob, GearmanClientOptions, WaitForResultOptions, WatchResultOptions } from './client/gearman-client.js';
export type {
  CompletedJobResult,
  FailedJobResult,
  JobProgress,
  JobResult,
  QueuedJobResult,
  RunningJobResult,
  UnknownJobResult,
} from './client/job-result.js';
export { JobWatch } from './client/result-watch.js';
export type { JobWatchEvents } from './client/result-watch.js';
export type { ClientJob, ClientJobEvents } from './client/client-job.js';
export type { JobPriority, SubmitOptions } from './client/submit-options.js';
export type { JobStatus, UniqueJobStatus } from './client/job-status.js';
export { GearmanWorker } from './worker/gearman-worker.js';
export type { GearmanWorkerOptions, JobHandler, RegisterOptions } from './worker/gearman-worker.js';
export type { WorkerJob, WorkerJobEnd, WorkerJobOutcome, WorkerJobRecorder } from './worker/worker-job.js';
// Reading a job server (gearmand or ours) over its admin protocol, as health checks and `nestjs-gearman status` do.
export { GearmanAdminClient } from './client/admin-client.js';
export type { GearmanAdminClientOptions, KeptResultsSummary } from './client/admin-client.js';
export { inspectJobServer } from './client/job-server-snapshot.js';
export type {
  FunctionSnapshot,
  InspectOptions,
  JobServerSnapshot,
  RunningJobSnapshot,
  WorkerSnapshot,
} from './client/job-server-snapshot.js';
// What clients, workers and the module share: where the job servers are and how to reach them.
export type { GearmanPeerOptions } from './connection/peer-options.js';
export type { ServerAddress } from './connection/server-address.js';
export type { ReconnectOptions } from './connection/backoff.js';
export type { GearmanLogger } from './common/logger.js';

// Prometheus metrics (prom-client), and the observers clients and workers report to.
export { DEFAULT_DURATION_BUCKETS, GearmanMetrics } from './metrics/gearman-metrics.js';
export type { GearmanMetricsOptions, PrometheusRegistry } from './metrics/gearman-metrics.js';
export type { ClientJobOutcome, GearmanClientObserver } from './client/client-observer.js';
export type { GearmanWorkerObserver } from './worker/worker-observer.js';

// The live dashboard (served by `nestjs-gearman server --http-port` and the module's `dashboard` option).
export { GearmanDashboard } from './dashboard/gearman-dashboard.js';
export type { GearmanDashboardOptions } from './dashboard/gearman-dashboard.js';
export type { AppWorkerState, DashboardState, JobCounts, ServerState, ThroughputSource } from './dashboard/dashboard-state.js';

// The job server (also run by the `nestjs-gearman server` command).
export { GearmanJobServer } from './job-server/gearman-job-server.js';
export type {
  GearmanJobServerOptions,
  JobServerAddress,
  JobServerListener,
  JobServerStats,
  JobServerTlsOptions,
} from './job-server/gearman-job-server.js';
export type { MemoryQueueOptions, QueueStoreOptions, SqliteQueueOptions } from './job-server/queue-store.js';
export type { JobServerLimits } from './job-server/server-limits.js';
export type { AdminCommandsSetting } from './job-server/admin-access.js';
export type { JobHandleStyle } from './job-server/job-handles.js';
// Following every job through the job server (the `lifecycle` option): metrics, stores.
export { combineLifecycles } from './job-server/job-lifecycle.js';
export type { JobEnd, JobLifecycle, JobOutcome, JobView, RequeueReason, WorkUpdate } from './job-server/job-lifecycle.js';
export type { ResultRetention } from './job-server/stored-results.js';

// Results kept for gearmand deployments (gearmand keeps none): workers write, clients read.
export { RedisResultStore } from './results/redis-result-store.js';
export type { RedisResultStoreOptions } from './results/redis-result-store.js';
export type { BatchSubmitter, GearmanResultStore, QueuedJob } from './results/result-store.js';
export type { RedisClient, RedisConnectionOptions } from './results/redis-result-store.js';
