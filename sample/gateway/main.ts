import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { GEARMAN_JOB_SERVER, GEARMAN_SERVERS } from '../nestjs-gearman.js';
import { describeServers, reportReady } from '../shared/ready.js';
import { SampleConfig } from '../shared/sample-config.js';
import { GatewayModule } from './gateway.module.js';

const app = await NestFactory.create(GatewayModule, { logger: process.env.SAMPLE_QUIET ? ['error', 'warn'] : undefined });
// On SIGTERM / SIGINT: close HTTP, then the Gearman client, then the embedded job server.
app.enableShutdownHooks();
await app.listen(app.get(SampleConfig).httpPort, '127.0.0.1');
reportReady({
  app: 'gateway',
  url: await app.getUrl(),
  gearmanServers: describeServers(app.get(GEARMAN_SERVERS)),
  embeddedServer: app.get(GEARMAN_JOB_SERVER) !== null,
});
