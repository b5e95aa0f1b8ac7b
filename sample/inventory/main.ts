import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { GearmanModule, GEARMAN_SERVERS } from '../nestjs-gearman.js';
import { Patterns } from '../shared/patterns.js';
import { describeServers, reportReady } from '../shared/ready.js';
import { InventoryModule } from './inventory.module.js';

const app = await NestFactory.createMicroservice(InventoryModule, {
  ...GearmanModule.microservice(),
  logger: process.env.SAMPLE_QUIET ? ['error', 'warn'] : undefined,
});
app.enableShutdownHooks();
await app.listen();
reportReady({
  app: 'inventory',
  gearmanServers: describeServers(app.get(GEARMAN_SERVERS)),
  embeddedServer: false,
  patterns: [Patterns.ReserveStock],
});
