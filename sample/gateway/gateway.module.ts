import { Module } from '@nestjs/common';
import { GearmanModule, RedisResultStore } from '../nestjs-gearman.js';
import { SampleConfig, SampleConfigModule } from '../shared/sample-config.js';
import { BatchController } from './batch.controller.js';
import { HomeController } from './home.controller.js';
import { OrdersController } from './orders.controller.js';
import { QuotesController } from './quotes.controller.js';
import { ReportsController } from './reports.controller.js';
import { UsersController } from './users.controller.js';
import { WordCountController } from './wordcount.controller.js';

/**
 * The HTTP API. It runs the job server itself (the embedded `GearmanJobServer`) unless
 * `GEARMAN_SERVERS` names external ones, such as gearmand.
 */
@Module({
  imports: [
    GearmanModule.forRootAsync({
      imports: [SampleConfigModule],
      inject: [SampleConfig],
      // The embedded server keeps job results itself; gearmand keeps none, so with it a Redis result store does.
      useFactory: (config: SampleConfig) =>
        config.gearmanServers
          ? { servers: config.gearmanServers, resultStore: config.redisUrl ? new RedisResultStore({ redis: config.redisUrl }) : undefined }
          : { embeddedServer: { port: config.gearmanPort } },
    }),
  ],
  controllers: [
    HomeController,
    UsersController,
    OrdersController,
    ReportsController,
    BatchController,
    QuotesController,
    WordCountController,
  ],
})
export class GatewayModule {}
