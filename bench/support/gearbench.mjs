// gearbench: the libgearman load generator of /work/shared/tools/gearbench.c (C clients and
// workers, threads), built with gcc into a temporary directory at bench time. A machine without
// gcc, libgearman-dev or the source gets a printed reason instead of figures.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GEARBENCH_SOURCE = process.env.GEARBENCH_SOURCE ?? '/work/shared/tools/gearbench.c';

/** Compiles gearbench: `{ path, dispose() }`, or `{ skip: reason }`. */
export function buildGearbench() {
  if (!existsSync(GEARBENCH_SOURCE)) return { skip: `${GEARBENCH_SOURCE} is missing (set GEARBENCH_SOURCE)` };
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-gearman-gearbench-'));
  const path = join(dir, 'gearbench');
  const result = spawnSync('gcc', ['-O2', '-o', path, GEARBENCH_SOURCE, '-lgearman', '-lpthread'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    const why = result.error
      ? `gcc: ${result.error.message}`
      : (result.stderr.split('\n').find((line) => line.trim()) ?? `gcc exited ${result.status}`);
    return { skip: `cannot build gearbench (apt-get install gcc libgearman-dev): ${why}` };
  }
  return { path, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Runs `gearbench 127.0.0.1 PORT MODE ...ARGS` and reads its figures: for `rt`, `{ roundTrips }`
 * (jobs/s); for `bg`, `{ submit, drain }` (jobs/s). Throws when a job failed or the run did not finish.
 */
export function runGearbench(path, port, mode, args) {
  const result = spawnSync(path, ['127.0.0.1', String(port), mode, ...args.map(String)], { encoding: 'utf8', timeout: 300_000 });
  const line = result.stdout.trim();
  if (result.error || result.status !== 0)
    throw new Error(`gearbench ${mode} ${args.join(' ')} failed: ${result.error?.message ?? line} ${result.stderr}`);
  const field = (name) => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line)?.[1]);
  return mode === 'rt' ? { roundTrips: field('jobs_per_s') } : { submit: field('submit_per_s'), drain: field('drain_per_s') };
}
