/**
 * `npm run sample:speedup`: the sample's split task (a word count over chunks of a text, submitted
 * as one background batch) run with 1 and then with 4 worker processes of the counter app, each
 * taking one job at a time. A chunk's sub-job waits on "storage" (SAMPLE_CHUNK_READ_MS, default
 * 100 ms here), as I/O-bound work does, so the processes add up even on a 2-core machine. Prints
 * both times and the speed-up; exits 1 when 4 workers were not at least 3 times as fast.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApp, type RunningApp } from './demo/apps.js';
import { ClientGearman, GearmanJobServer } from './nestjs-gearman.js';
import { Patterns, type TextChunk, type WordCount } from './shared/patterns.js';
import { sampleText } from './shared/sample-text.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHUNKS = Number(process.env.SAMPLE_SPEEDUP_CHUNKS ?? 48);
const READ_MS = process.env.SAMPLE_CHUNK_READ_MS ?? '100';
const say = (line = '') => console.log(line);

async function timeBatch(client: ClientGearman): Promise<{ seconds: number; result: WordCount }> {
  const items: TextChunk[] = sampleText(CHUNKS).map((text, chunk) => ({ chunk, text }));
  const started = process.hrtime.bigint();
  const handle = await client.emitBatch(Patterns.CountWords, items, { gather: Patterns.MergeCounts });
  const state = await client.waitForResult<WordCount>(handle, { timeoutMs: 120_000 });
  if (state.state !== 'completed') throw new Error(`the word count ended ${state.state}`);
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, result: state.value };
}

async function main(): Promise<number> {
  const server = new GearmanJobServer({ port: 0, logger: false });
  await server.listen();
  const servers = `127.0.0.1:${server.address().port}`;
  const client = new ClientGearman({ servers: [servers] });
  const seconds = new Map<number, number>();
  say(`The split task: ${CHUNKS} chunks, ${READ_MS} ms of "storage" wait each, one job at a time per worker process`);
  try {
    for (const count of [1, 4]) {
      const workers: RunningApp[] = [];
      try {
        for (let i = 0; i < count; i++) {
          workers.push(
            await startApp('counter', join(here, 'counter', 'main.js'), { GEARMAN_SERVERS: servers, SAMPLE_CHUNK_READ_MS: READ_MS }, say),
          );
        }
        const { seconds: taken, result } = await timeBatch(client);
        seconds.set(count, taken);
        say(
          `${count} worker process${count === 1 ? ' ' : 'es'}: ${taken.toFixed(2)} s  (${result.words} words, ${result.distinct} distinct)`,
        );
      } finally {
        for (const worker of workers) await worker.stop();
      }
    }
  } finally {
    await client.close();
    await server.close();
  }
  const speedup = seconds.get(1)! / seconds.get(4)!;
  say(`speed-up with 4 worker processes: ${speedup.toFixed(2)}x`);
  if (speedup >= 3) return 0;
  say('That is under 3x: the machine was busy with other work. Run it again when it is quieter.');
  return 1;
}

process.exit(await main());
