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

  test('a CommonJS app on Nest 11 requires dist/cjs', async () => {
    const app = consumerWith(join(repo, 'test', 'nest11', 'node_modules'));
    apps.push(app);
    cpSync(join(fixtures, 'consumer.cjs'), join(app, 'main.cjs'));
    const { stdout } = await run(process.execPath, [join(app, 'main.cjs')], { cwd: app, timeout: 20000 });
    const report = JSON.parse(stdout);
    expect(report.nest).toMatch(/^11\./);
    expect(report.entry).toBe(join(app, 'node_modules', 'nestjs-gearman', 'dist', 'cjs', 'index.js'));
    expect(report.result).toBe(6);
  });

  test('an ES-module app on Nest 12 imports dist/esm', async () => {
    const app = consumerWith(join(repo, 'node_modules'));
    apps.push(app);
    cpSync(join(fixtures, 'consumer.mjs'), join(app, 'main.mjs'));
    const { stdout } = await run(process.execPath, [join(app, 'main.mjs')], { cwd: app, timeout: 20000 });
    const report = JSON.parse(stdout);
    expect(report.nest).toMatch(/^12\./);
    expect(report.entry).toBe(join(app, 'node_modules', 'nestjs-gearman', 'dist', 'esm', 'index.js'));
    expect(report.result).toBe(6);
  });
});
