import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { GearmanModule, GEARMAN_SERVERS } from '../nestjs-gearman.js';
import { Patterns } from '../shared/patterns.js';
import { describeServers, reportReady } from '../shared/ready.js';
import { WorkerModule } from './worker.module.js';

// A pure microservice: GearmanModule.microservice() gives it a ServerGearman that connects where the
// module's client does, with the transport's defaults (many jobs at once, so slow jobs do not hold up the others).
const app = await NestFactory.createMicroservice(WorkerModule, {
  ...GearmanModule.microservice(),
  logger: process.env.SAMPLE_QUIET ? ['error', 'warn'] : undefined,
});
app.enableShutdownHooks();
await app.listen();
reportReady({
  app: 'worker',
  gearmanServers: describeServers(app.get(GEARMAN_SERVERS)),
  embeddedServer: false,
  patterns: Object.values(Patterns).filter((pattern) => pattern !== Patterns.ReserveStock),
});
