/**
 * `npm run sample`: starts the sample system (the gateway with its embedded job server, the worker
 * microservice and the inventory microservice, each its own process), walks through every feature
 * over HTTP, explains what happened, stops everything and exits 0 when it all behaved as expected.
 *
 * `npm run sample:serve` (or `--serve`): starts the same system and keeps it running for curl.
 * `GEARMAN_SERVERS=127.0.0.1:4730 npm run sample`: uses that job server (e.g. gearmand) instead.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApp, type RunningApp } from './demo/apps.js';
import { steps } from './demo/steps.js';

const here = dirname(fileURLToPath(import.meta.url));
const serve = process.argv.includes('--serve');
const externalServers = process.env.GEARMAN_SERVERS;
const say = (line = '') => console.log(line);

const apps: RunningApp[] = [];

/** Workers first, so their jobs finish; the gateway, which may run the job server, last. */
async function stopAll(): Promise<void> {
  for (const app of apps.splice(0).reverse()) await app.stop();
}

async function main(): Promise<number> {
  say('nestjs-gearman sample: an HTTP gateway and two microservices talking over Gearman');
  say('='.repeat(80));
  const outboxDir = await mkdtemp(join(tmpdir(), 'nestjs-gearman-sample-'));
  const shared = { SAMPLE_OUTBOX: process.env.SAMPLE_OUTBOX ?? join(outboxDir, 'outbox.log'), SAMPLE_QUIET: serve ? '' : '1' };
  try {
    const gateway = await startApp(
      'gateway',
      join(here, 'gateway', 'main.js'),
      {
        ...shared,
        HTTP_PORT: process.env.HTTP_PORT ?? (serve ? '3000' : '0'),
        GEARMAN_PORT: process.env.GEARMAN_PORT ?? (serve ? '4730' : '0'),
      },
      say,
    );
    apps.push(gateway);
    const servers = gateway.ready.gearmanServers.join(',');
    const jobServer = gateway.ready.embeddedServer ? `embedded in the gateway, listening on ${servers}` : `external, at ${servers}`;
    say(`job server  ${jobServer}`);
    say(`gateway     HTTP API on ${gateway.ready.url}  (pid ${gateway.process.pid})`);
    const env = { ...shared, GEARMAN_SERVERS: servers };
    const [worker, inventory] = await Promise.all([
      startApp('worker', join(here, 'worker', 'main.js'), env, say),
      startApp('inventory', join(here, 'inventory', 'main.js'), env, say),
    ]);
    apps.push(worker, inventory);
    say(`worker      microservice serving ${worker.ready.patterns?.join(', ')}  (pid ${worker.process.pid})`);
    say(`inventory   microservice serving ${inventory.ready.patterns?.join(', ')}  (pid ${inventory.process.pid})`);
    if (serve) return await printCommandsAndWait(gateway.ready.url!, servers);
    const failures = await runTour(gateway.ready.url!);
    say();
    say(`Stopping the worker and inventory, then the gateway${externalServers ? '' : ' (its embedded job server stops last)'}...`);
    await stopAll();
    say(failures.length === 0 ? `Done: all ${steps.length} parts behaved as expected.` : `Done, with ${failures.length} problem(s):`);
    for (const failure of failures) say(`  ✗ ${failure}`);
    return failures.length === 0 ? 0 : 1;
  } catch (error) {
    say(`The sample could not run: ${(error as Error).message}`);
    await stopAll();
    return 1;
  }
}

async function runTour(baseUrl: string): Promise<string[]> {
  const failures: string[] = [];
  for (const [index, step] of steps.entries()) {
    say();
    say(`${index + 1}. ${step.title}`);
    say('-'.repeat(80));
    try {
      const problems = await step.run({ baseUrl, say: (line = '') => say(line && `   ${line}`) });
      failures.push(...problems.map((problem) => `${step.title}: ${problem}`));
      say(problems.length === 0 ? '   ✓' : `   ✗ ${problems.join('; ')}`);
    } catch (error) {
      failures.push(`${step.title}: ${(error as Error).message}`);
      say(`   ✗ ${(error as Error).message}`);
    }
  }
  return failures;
}

/** Prints what to try, then waits: Ctrl-C (see `stopOnSignal`) ends the run. */
function printCommandsAndWait(url: string, servers: string): Promise<number> {
  const [host, port] = servers.split(',')[0].split(':');
  const user = `'{"name":"Grace Hopper","email":"grace@example.com"}'`;
  say();
  say('The sample is running. Try:');
  say(`  curl ${url}/`);
  say(`  curl -X POST ${url}/users -H 'content-type: application/json' -d ${user}`);
  say(`  curl ${url}/emails`);
  say(`  curl -X POST ${url}/orders -H 'content-type: application/json' -d '{"sku":"gear-42","quantity":2}'`);
  say(`  curl -X POST ${url}/orders -H 'content-type: application/json' -d '{"sku":"cog-7","quantity":9}'`);
  say(`  curl -N ${url}/reports/weekly-sales?sections=5`);
  say(`  curl -X POST ${url}/batch        # then: curl ${url}/batch/<batchId>`);
  say(`  curl '${url}/quotes/ACME?callers=5'`);
  say('The job server speaks plain Gearman, so the Gearman command-line tools work too:');
  say(`  gearman -h ${host} -p ${port} -f users.register ${user}`);
  say(`  gearman -h ${host} -p ${port} -f quotes.price '"ACME"'`);
  say(`  gearadmin -h ${host} -p ${port} --status`);
  say('Press Ctrl-C to stop.');
  return new Promise<number>(() => undefined);
}

/** Ctrl-C or SIGTERM at any point: stop what runs, in order. Exits 0 when serving (that is how it ends), 130 otherwise. */
function stopOnSignal(): Promise<number> {
  return new Promise((resolve) => {
    const stop = () => {
      say();
      say('Stopping...');
      void stopAll().then(() => resolve(serve ? 0 : 130));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

process.exit(await Promise.race([main(), stopOnSignal()]));
