import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * The built package (`npm test` builds dist/ first) as users get it: copied into a consumer's
 * node_modules outside this repo, then loaded by a CommonJS app on Nest 11 and an ES-module app
 * on Nest 12, each running a real round trip over the embedded job server and loading the
 * `nestjs-gearman/protocol` entry (one GearmanProtocolError class for both entries), serving the
 * dashboard's page from the files shipped beside its code, and finding that an optional peer
 * dependency left out (ioredis) is asked for by name only when it is used.
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
  // @types: Node's own types, for the TypeScript consumer.
  for (const dependency of ['@nestjs', 'rxjs', 'reflect-metadata', '@types']) {
    if (existsSync(join(nodeModules, dependency))) symlinkSync(join(nodeModules, dependency), join(app, 'node_modules', dependency));
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
    expect(report.protocolEntry).toBe(join(app, 'node_modules', 'nestjs-gearman', 'dist', build, 'protocol', 'index.js'));
    expect(report.echoPacket).toBe('\0REQ\0\0\0\x10\0\0\0\x02hi');
    expect(report.oneErrorClass).toBe(true);
    expect(report.dashboardPage).toBe(true);
    expect(report.withoutIoredis).toBe(
      'The Redis result store needs the optional package ioredis, which is not installed: npm install ioredis@^6.0.0',
    );
  });

  test('npm pack ships the dashboard page in both builds', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repo, timeout: 60000 });
    const [{ files }] = JSON.parse(stdout) as [{ files: { path: string }[] }];
    const paths = files.map((file) => file.path);
    for (const build of ['esm', 'cjs']) {
      for (const asset of ['index.html', 'dashboard.js', 'dashboard.css'])
        expect(paths).toContain(`dist/${build}/dashboard/assets/${asset}`);
    }
  });

  // A CommonJS TypeScript app (`moduleResolution: node10`, as Nest 11 projects are set up) does not
  // read package.json `exports`: it finds the root's types through `types` and the protocol entry's
  // through `typesVersions`.
  test('a TypeScript app with node10 resolution sees the types of both entries', async () => {
    const app = consumerWith(join(repo, 'node_modules'));
    apps.push(app);
    cpSync(join(fixtures, 'consumer-node10.ts'), join(app, 'consumer.ts'));
    const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const flags = ['--noEmit', '--strict', '--module', 'commonjs', '--moduleResolution', 'node10', '--target', 'es2022', '--skipLibCheck'];
    await expect(run(process.execPath, [tsc, ...flags, 'consumer.ts'], { cwd: app, timeout: 60000 })).resolves.toBeDefined();
  });
});
