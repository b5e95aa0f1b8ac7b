import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { GEARMAN_SERVERS, GearmanModule } from '../nestjs-gearman.js';
import { describeServers, reportReady } from '../shared/ready.js';
import { CounterModule } from './counter.module.js';

// One job at a time per process, Gearman's classic worker: the speed-up then comes from processes.
const app = await NestFactory.createMicroservice(CounterModule, {
  ...GearmanModule.microservice({ concurrency: Number(process.env.SAMPLE_COUNTER_CONCURRENCY ?? 1) }),
  logger: ['error', 'warn'],
});
app.enableShutdownHooks();
await app.listen();
reportReady({ app: 'counter', gearmanServers: describeServers(app.get(GEARMAN_SERVERS)), embeddedServer: false });
