// Installs Nest 11 beside this file when it (or any of its dependencies) is not there yet, so that
// `npm test` works on a fresh clone and after a dependency is added to package.json here.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { dependencies } = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
if (Object.keys(dependencies).some((name) => !existsSync(join(here, 'node_modules', name, 'package.json')))) {
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: here, stdio: 'inherit' });
}
