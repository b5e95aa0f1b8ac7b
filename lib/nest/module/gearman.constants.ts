/** The options the module was configured with (`forRoot()` as given, `forRootAsync()` as resolved). */
export const GEARMAN_MODULE_OPTIONS = Symbol('GEARMAN_MODULE_OPTIONS');

/** The module's `ClientGearman`, for `@Inject(GEARMAN_CLIENT)`; the class itself is a token too. */
export const GEARMAN_CLIENT = Symbol('GEARMAN_CLIENT');

/** The embedded `GearmanJobServer`, listening; `null` when the module runs without one. */
export const GEARMAN_JOB_SERVER = Symbol('GEARMAN_JOB_SERVER');

/** The job servers this app's client and workers connect to (`ServerAddress[]`), the embedded one's real port included. */
export const GEARMAN_SERVERS = Symbol('GEARMAN_SERVERS');

/** The module's `GearmanMetrics` when its `metrics` option is on, else `null`; the class is a token too. */
export const GEARMAN_METRICS = Symbol('GEARMAN_METRICS');

/** The module's `GearmanDashboard`, listening, when its `dashboard` option is on, else `null`. */
export const GEARMAN_DASHBOARD = Symbol('GEARMAN_DASHBOARD');

/** Internal: what the module's workers report their jobs to (the metrics, or the dashboard's counter), or `null`. */
export const GEARMAN_WORKER_OBSERVER = Symbol('GEARMAN_WORKER_OBSERVER');
