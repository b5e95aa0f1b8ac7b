import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * The built package (`npm test` builds dist/ first) as users get it: copied into a consumer's
 * node_modules outside this repo, then loaded by a CommonJS app on Nest 11 and an ES-module app
 * on Nest 12, each running a real round trip over the embedded job server.
 */
const run = promisify(execFile);
const repo = process.cwd();
const fixtures = join(repo, 'test', 'package', 'fixtures');

function consumerWith(nodeModules: string): string {
  const app = mkdtempSync(join(tmpdir(), 'nestjs-gearman-consumer-'));
  const installed = join(app, 'node_modules', 'nestjs-gearman');
  mkdirSync(installed, { recursive: true });
  cpSync(join(repo, 'package.json'), join(installed, 'package.json'));
  cpSync(join(repo, 'dist'), join(installed, 'dist'), { recursive: true });
  for (const dependency of ['@nestjs', 'rxjs', 'reflect-metadata']) {
    symlinkSync(join(nodeModules, dependency), join(app, 'node_modules', dependency));
  }
  return app;
}

describe('the built package', () => {
  const apps: string[] = [];
  afterAll(() => apps.forEach((app) => rmSync(app, { recursive: true, force: true })));

  test.each([
    { app: 'a CommonJS app on Nest 11', build: 'cjs', nest: '11', nodeModules: ['test', 'nest11', 'node_modules'], main: 'consumer.cjs' },
    { app: 'an ES-module app on Nest 12', build: 'esm', nest: '12', nodeModules: ['node_modules'], main: 'consumer.mjs' },
  ])('$app loads dist/$build', async ({ build, nest, nodeModules, main }) => {
    const app = consumerWith(join(repo, ...nodeModules));
    apps.push(app);
    cpSync(join(fixtures, main), join(app, main));
    const { stdout } = await run(process.execPath, [join(app, main)], { cwd: app, timeout: 20000 });
    const report = JSON.parse(stdout);
    expect(report.nest.split('.')[0]).toBe(nest);
    expect(report.entry).toBe(join(app, 'node_modules', 'nestjs-gearman', 'dist', build, 'index.js'));
    expect(report.result).toBe(6);
  });
});
