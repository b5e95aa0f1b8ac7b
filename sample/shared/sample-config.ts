import { Module } from '@nestjs/common';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Settings of the sample apps, read from the environment:
 *
 * - `GEARMAN_SERVERS` (e.g. `127.0.0.1:4730` or `gm1:4730,gm2:4730`): the job servers to use. When
 *   it is not set, the gateway starts the embedded job server and the other apps expect one on
 *   127.0.0.1:4730.
 * - `GEARMAN_PORT`: the embedded server's port (default 4730; 0 = any free port).
 * - `HTTP_PORT`: the gateway's HTTP port (default 3000; 0 = any free port).
 * - `SAMPLE_OUTBOX`: the file the e-mail service appends to.
 * - `REDIS_URL` (e.g. `redis://127.0.0.1:6379`): a Redis result store for job servers that keep no
 *   results (gearmand); the embedded server keeps them itself.
 */
export class SampleConfig {
  constructor(
    readonly gearmanServers: string[] | undefined,
    readonly gearmanPort: number,
    readonly httpPort: number,
    readonly outboxFile: string,
    readonly redisUrl: string | undefined,
  ) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): SampleConfig {
    const servers = env.GEARMAN_SERVERS?.split(',')
      .map((server) => server.trim())
      .filter(Boolean);
    return new SampleConfig(
      servers && servers.length > 0 ? servers : undefined,
      port(env.GEARMAN_PORT, 4730, 'GEARMAN_PORT'),
      port(env.HTTP_PORT, 3000, 'HTTP_PORT'),
      env.SAMPLE_OUTBOX ?? join(tmpdir(), 'nestjs-gearman-sample', 'outbox.log'),
      env.REDIS_URL || undefined,
    );
  }
}

function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535)
    throw new Error(`${name} must be a port number (0-65535), got ${JSON.stringify(value)}`);
  return parsed;
}

/** Provides `SampleConfig`; tests replace it with `overrideProvider(SampleConfig)`. */
@Module({
  providers: [{ provide: SampleConfig, useFactory: () => SampleConfig.fromEnv() }],
  exports: [SampleConfig],
})
export class SampleConfigModule {}
