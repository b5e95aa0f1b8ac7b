// Makes docs/images/dashboard.png: a Nest app with the module dashboard, a few functions and a load.
// Run from the repository root after npm run build: node docs/images/dashboard-screenshot.mjs
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Ctx } from '@nestjs/microservices';
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GearmanModule, GEARMAN_DASHBOARD, GearmanWorker } from '../../dist/esm/index.js';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
class H {
  async resize(n, ctx) {
    for (let s = 1; s <= 5; s++) {
      ctx.sendStatus(s, 5);
      await sleep(40 + (n % 7) * 10);
    }
    if (n % 13 === 0) throw new Error('x');
    return n;
  }
  async quote(n) {
    await sleep(5);
    return n;
  }
}
MessagePattern('images.resize')(H.prototype, 'resize', Object.getOwnPropertyDescriptor(H.prototype, 'resize'));
Ctx()(H.prototype, 'resize', 1);
MessagePattern('orders.quote')(H.prototype, 'quote', Object.getOwnPropertyDescriptor(H.prototype, 'quote'));
Controller()(H);
class M {}
Module({
  imports: [
    GearmanModule.forRoot({
      embeddedServer: { port: 0, logger: false },
      dashboard: { intervalMs: 1000 },
      worker: { concurrency: 6, clientId: 'orders-app' },
    }),
  ],
  controllers: [H],
})(M);
const app = await NestFactory.create(M, { logger: false });
app.connectMicroservice(GearmanModule.microservice());
await app.startAllMicroservices();
const dash = app.get(GEARMAN_DASHBOARD);

const client = app.get(ClientGearman);
await client.connect();
const low = client.unwrap();
const port = (await (await fetch(`http://127.0.0.1:${dash.address().port}/api/state`)).json()).servers[0].server;
const mailer = new GearmanWorker({ servers: [port], clientId: 'mailer-1', concurrency: 2, logger: { log() {}, warn() {}, error() {} } });
mailer.register('email.send', async () => {
  await sleep(120);
  return 'sent';
});
await mailer.start();
let stop = false;
const loops = [];
for (let c = 0; c < 6; c++)
  loops.push(
    (async () => {
      for (let n = c; !stop; n += 6) {
        await lastValueFrom(client.send(n % 3 ? 'orders.quote' : 'images.resize', n)).catch(() => 0);
        await sleep(25);
      }
    })(),
  );
loops.push(
  (async () => {
    for (let n = 0; !stop; n++) {
      await low.submitBackgroundJob('email.send', String(n));
      await sleep(70);
    }
  })(),
);
loops.push(
  (async () => {
    for (let n = 0; n < 5; n++) await low.submitBackgroundJob('reports.monthly', String(n), { priority: n % 2 ? 'low' : 'high' });
  })(),
);
await sleep(75_000);
const ctx = await chromium.launchPersistentContext(mkdtempSync('/tmp/shot-'), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 760 },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const page = await ctx.newPage();
await page.goto(`http://127.0.0.1:${dash.address().port}/`);
await sleep(2500);
await page.screenshot({ path: 'docs/images/dashboard.png' });
await ctx.close();
stop = true;
await Promise.all(loops);
await mailer.stop();
await app.close();
process.exit(0);
