import { Module } from '@nestjs/common';
import { GearmanModule } from '../nestjs-gearman.js';
import { SampleConfig, SampleConfigModule } from '../shared/sample-config.js';
import { BatchController } from './batch.controller.js';
import { HomeController } from './home.controller.js';
import { OrdersController } from './orders.controller.js';
import { QuotesController } from './quotes.controller.js';
import { ReportsController } from './reports.controller.js';
import { UsersController } from './users.controller.js';

/**
 * The HTTP API. It runs the job server itself (the embedded `GearmanJobServer`) unless
 * `GEARMAN_SERVERS` names external ones, such as gearmand.
 */
@Module({
  imports: [
    GearmanModule.forRootAsync({
      imports: [SampleConfigModule],
      inject: [SampleConfig],
      useFactory: (config: SampleConfig) =>
        config.gearmanServers ? { servers: config.gearmanServers } : { embeddedServer: { port: config.gearmanPort } },
    }),
  ],
  controllers: [HomeController, UsersController, OrdersController, ReportsController, BatchController, QuotesController],
})
export class GatewayModule {}
