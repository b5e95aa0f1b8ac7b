import { Module } from '@nestjs/common';
import { GearmanModule, RedisResultStore } from '../nestjs-gearman.js';
import { SampleConfig, SampleConfigModule } from '../shared/sample-config.js';
import { BatchController } from './batch.controller.js';
import { EmailController } from './email.controller.js';
import { OrdersController } from './orders.controller.js';
import { QuotesController } from './quotes.controller.js';
import { ReportsController } from './reports.controller.js';
import { UsersController } from './users.controller.js';
import { WordCountController } from './wordcount.controller.js';

/**
 * The worker microservice: its handlers become Gearman functions. Its own `ClientGearman` (from the
 * same `GearmanModule`) lets the orders handler call the inventory microservice.
 */
@Module({
  imports: [
    SampleConfigModule,
    GearmanModule.forRootAsync({
      imports: [SampleConfigModule],
      inject: [SampleConfig],
      // With gearmand (which keeps no results) the workers record into Redis and coordinate batches there.
      useFactory: (config: SampleConfig) => ({
        servers: config.gearmanServers,
        resultStore: config.redisUrl ? new RedisResultStore({ redis: config.redisUrl }) : undefined,
      }),
    }),
  ],
  controllers: [
    UsersController,
    EmailController,
    OrdersController,
    ReportsController,
    BatchController,
    QuotesController,
    WordCountController,
  ],
})
export class WorkerModule {}
