// Runs every bench/*.bench.mjs in name order, each in a fresh node process so one benchmark's
// heap and JIT state do not colour the next. `node bench/run.mjs codec` runs only the files
// whose name contains "codec". Exits non-zero when any benchmark fails.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];
const files = readdirSync(here)
  .filter((name) => name.endsWith('.bench.mjs') && (!filter || name.includes(filter)))
  .sort();

if (files.length === 0) {
  console.error(filter ? `No benchmark in bench/ matches "${filter}".` : 'No benchmark in bench/.');
  process.exit(1);
}

const failed = [];
for (const name of files) {
  console.log(`\n=== ${name}`);
  const result = spawnSync(process.execPath, [join(here, name)], { stdio: 'inherit' });
  if (result.status !== 0) failed.push(`${name} (${result.error?.message ?? result.signal ?? `exit code ${result.status}`})`);
}

if (failed.length > 0) {
  console.error(`\n${failed.length} of ${files.length} benchmark(s) failed: ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`\n${files.length} benchmark(s) done.`);
