import type { BatchProgress, Order, Outbox, Quote, ReportSection, ReportSummary, User, WordCountStatus } from '../shared/patterns.js';
import { readEvents, request } from './http.js';

export interface DemoContext {
  baseUrl: string;
  say(line?: string): void;
}

/** One part of the tour: it calls the gateway, explains what happened, and returns what went wrong (nothing, ideally). */
export interface DemoStep {
  title: string;
  run(demo: DemoContext): Promise<string[]>;
}

const json = (value: unknown) => JSON.stringify(value);

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const newUser = { name: 'Ada Lovelace', email: 'ada@example.com' };

export const steps: DemoStep[] = [
  {
    title: "Request/response: send() waits for the worker's answer",
    async run({ baseUrl, say }) {
      say(`POST /users ${json(newUser)}`);
      const started = Date.now();
      const { status, body } = await request<{ user: User; welcomeEmailJob: string }>(baseUrl, 'POST', '/users', newUser);
      say(`← ${status} in ${Date.now() - started} ms: ${json(body)}`);
      if (status !== 201) return [`POST /users answered ${status}`];
      say(`The gateway's send('users.register') was a foreground Gearman job: the worker app registered`);
      say(`user ${body.user.id} and its answer became the HTTP response.`);
      const invalid = await request<{ message: string }>(baseUrl, 'POST', '/users', { name: 'Nobody', email: 'not-an-address' });
      say(`POST /users with a bad e-mail address ← ${invalid.status}: ${json(invalid.body)}`);
      say(`(the worker threw an RpcException; its { code, message } came back and became a 400)`);
      return invalid.status === 400 ? [] : [`the invalid user was answered with ${invalid.status}, not 400`];
    },
  },
  {
    title: 'Background job: emit() queues the welcome e-mail and does not wait',
    async run({ baseUrl, say }) {
      say(`The same POST /users also called emit('email.welcome', user): a background job.`);
      say(`The HTTP response only carried its job handle; the e-mail service ran it afterwards:`);
      const outbox = await until(
        'the welcome e-mail',
        async () => (await request<Outbox>(baseUrl, 'GET', '/emails')).body,
        (box) => box.emails.length > 0,
      );
      for (const email of outbox.emails) say(`  sent "${email.subject}" to ${email.to}`);
      say(`GET /emails lists it; the e-mail service also appended it to ${outbox.file}`);
      return outbox.emails.some((email) => email.to.includes(newUser.email)) ? [] : ['the welcome e-mail was not sent'];
    },
  },
  {
    title: 'Microservice to microservice: orders asks inventory through Gearman',
    async run({ baseUrl, say }) {
      const problems: string[] = [];
      const order = { sku: 'gear-42', quantity: 3 };
      say(`POST /orders ${json(order)}`);
      const placed = await request<Order>(baseUrl, 'POST', '/orders', order);
      say(`← ${placed.status}: ${json(placed.body)}`);
      if (placed.status !== 201) problems.push(`POST /orders answered ${placed.status}`);
      else say(`gateway → orders.place (worker app) → inventory.reserve (inventory app): ${placed.body.reservation.remaining} left`);
      const tooMany = { sku: 'cog-7', quantity: 5 };
      say(`POST /orders ${json(tooMany)}`);
      const refused = await request<{ message: string }>(baseUrl, 'POST', '/orders', tooMany);
      say(`← ${refused.status}: ${json(refused.body)}`);
      say(`(the inventory's RpcException travelled back through the orders service to the gateway)`);
      if (refused.status !== 409) problems.push(`the order beyond the stock was answered with ${refused.status}, not 409`);
      return problems;
    },
  },
  {
    title: 'Streaming with progress: a report as server-sent events',
    async run({ baseUrl, say }) {
      say(`GET /reports/weekly-sales?sections=4  (text/event-stream)`);
      const events = await readEvents(`${baseUrl}/reports/weekly-sales?sections=4`, (event) => {
        if (event.type === 'progress') {
          const progress = event.data as { done: number; total: number; percent: number };
          say(`  progress  ${progress.done}/${progress.total} (${progress.percent}%)   ← WORK_STATUS`);
        } else if (event.type === 'section') {
          const section = event.data as ReportSection;
          say(`  section   ${section.title}: ${section.rows.map((row) => `${row.label} ${row.value}`).join(', ')}   ← WORK_DATA`);
        } else if (event.type === 'summary') {
          const summary = event.data as ReportSummary;
          say(`  summary   ${summary.sections} sections, total ${summary.total}   ← WORK_COMPLETE`);
        } else say(`  ${event.type}  ${json(event.data)}`);
      });
      const count = (type: string) => events.filter((event) => event.type === type).length;
      say(`Each event reached the HTTP client while the worker was still building the rest.`);
      return count('progress') === 4 && count('section') === 4 && count('summary') === 1
        ? []
        : [`expected 4 progress, 4 section and 1 summary events, got ${events.map((event) => event.type).join(', ')}`];
    },
  },
  {
    title: 'Priorities: queued jobs are handed out high, normal, then low',
    async run({ baseUrl, say }) {
      const { status, body } = await request<{ batchId: string; submitted: { name: string; priority: string }[] }>(
        baseUrl,
        'POST',
        '/batch',
      );
      if (status !== 201) return [`POST /batch answered ${status}`];
      say(`POST /batch queued ${body.submitted.length} background jobs at once, in this order:`);
      say(`  ${body.submitted.map((item) => `${item.name} (${item.priority})`).join(', ')}`);
      const progress = await until(
        'the batch',
        async () => (await request<BatchProgress>(baseUrl, 'GET', `/batch/${body.batchId}`)).body,
        (batch) => batch.started.length === body.submitted.length,
      );
      const priorityOf = new Map(body.submitted.map((item) => [item.name, item.priority]));
      say(`GET /batch/${body.batchId}: the worker started them in this order:`);
      say(`  ${progress.started.map((name) => `${name} (${priorityOf.get(name)})`).join(', ')}`);
      const rank = { high: 0, normal: 1, low: 2 } as Record<string, number>;
      const ranks = progress.started.map((name) => rank[priorityOf.get(name)!]);
      const byPriority = ranks.every((value, index) => index === 0 || ranks[index - 1] <= value);
      return byPriority ? [] : ['the batch did not start in priority order'];
    },
  },
  {
    title: 'Unique ids: concurrent calls for the same thing share one job',
    async run({ baseUrl, say }) {
      say(`GET /quotes/ACME?callers=5: the gateway sends 5 requests at once, each with unique id "quote:ACME"`);
      const { status, body } = await request<{ computations: number; quotes: Quote[] }>(baseUrl, 'GET', '/quotes/ACME?callers=5');
      if (status !== 200) return [`GET /quotes answered ${status}`];
      const prices = [...new Set(body.quotes.map((quote) => quote.price))];
      say(`← 5 answers, price ${prices.join(', ')}, computed ${body.computations} time(s) (computation #${body.quotes[0].computation})`);
      say(`The job server coalesced the 5 submissions into one job: one computation, five replies.`);
      return body.quotes.length === 5 && body.computations === 1 ? [] : [`expected 5 answers from 1 computation, got ${json(body)}`];
    },
  },
  {
    title: 'A split task: word counts over chunks, as a background batch with a gather step',
    async run({ baseUrl, say }) {
      const chunks = 24;
      say(`POST /wordcount {"chunks":${chunks}}: the gateway splits a text into ${chunks} chunks and calls emitBatch()`);
      const started = await request<{ handle: string; chunks: number }>(baseUrl, 'POST', '/wordcount', { chunks });
      if (started.status !== 202) return [`POST /wordcount answered ${started.status}: ${json(started.body)}`];
      const { handle } = started.body;
      say(`← 202 at once, with the batch's handle ${handle}; the job server now runs one sub-job per chunk`);
      let shown = -1;
      const status = await until(
        'the word count',
        async () => (await request<WordCountStatus>(baseUrl, 'GET', `/wordcount/${encodeURIComponent(handle)}`)).body,
        (current) => {
          if (current.progress.done !== shown && current.state !== 'completed') {
            shown = current.progress.done;
            say(`  GET /wordcount/${handle} ← ${current.state}, ${current.progress.done}/${current.progress.of} chunks counted`);
          }
          return current.state === 'completed' || current.state === 'failed' || current.state === 'unknown';
        },
        30_000,
      );
      if (status.state !== 'completed' || !status.result) return [`the word count ended ${status.state}: ${json(status.error)}`];
      const { result } = status;
      say(`  GET /wordcount/${handle} ← completed: ${result.words} words, ${result.distinct} distinct, over ${result.chunks} chunks`);
      say(`  top words: ${result.top.map((entry) => `${entry.word} ${entry.count}`).join(', ')}`);
      say(`Each request above was a new one: the result waited on the job server under the batch's handle.`);
      return result.chunks === chunks && result.words === chunks * 40 ? [] : [`expected ${chunks} chunks of 40 words, got ${json(result)}`];
    },
  },
];
