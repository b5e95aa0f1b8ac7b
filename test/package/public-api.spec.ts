import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * The public API is a deliberate list: the names the built package exports (CommonJS and ES
 * builds, run-time values and declared types, for `nestjs-gearman` and `nestjs-gearman/protocol`)
 * must be exactly those recorded in public-api.json. test/package/public-api.mjs reads them from
 * dist/ (`npm test` builds first) and fails by itself when the two builds disagree.
 */
const run = promisify(execFile);
const here = join(process.cwd(), 'test', 'package');

type Api = Record<string, { values: string[]; types: string[] }>;

function differences(recorded: Api, built: Api): string[] {
  const lines: string[] = [];
  for (const entry of new Set([...Object.keys(recorded), ...Object.keys(built)])) {
    for (const kind of ['values', 'types'] as const) {
      const before = recorded[entry]?.[kind] ?? [];
      const after = built[entry]?.[kind] ?? [];
      for (const name of after.filter((n) => !before.includes(n))) lines.push(`  + ${entry} ${kind}: ${name}`);
      for (const name of before.filter((n) => !after.includes(n))) lines.push(`  - ${entry} ${kind}: ${name}`);
    }
  }
  return lines;
}

describe('the public API of the built package', () => {
  it('is exactly the recorded list (test/package/public-api.json)', async () => {
    const { stdout } = await run(process.execPath, [join(here, 'public-api.mjs')], { timeout: 60000 });
    const built = JSON.parse(stdout) as Api;
    const recorded = JSON.parse(readFileSync(join(here, 'public-api.json'), 'utf8')) as Api;
    const changes = differences(recorded, built);
    if (changes.length > 0) {
      throw new Error(
        [
          'The public API of the built package changed (+ added, - removed):',
          ...changes,
          'If this is on purpose, run `npm run api:update` and commit test/package/public-api.json with the change',
          '(and document new names in docs/). If not, export the name by name from lib/index.ts or',
          'lib/protocol/index.ts, or stop exporting it.',
        ].join('\n'),
      );
    }
    expect(built).toEqual(recorded);
  });
});
