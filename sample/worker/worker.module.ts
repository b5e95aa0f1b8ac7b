import { Module } from '@nestjs/common';
import { GearmanModule } from '../nestjs-gearman.js';
import { SampleConfig, SampleConfigModule } from '../shared/sample-config.js';
import { BatchController } from './batch.controller.js';
import { EmailController } from './email.controller.js';
import { OrdersController } from './orders.controller.js';
import { QuotesController } from './quotes.controller.js';
import { ReportsController } from './reports.controller.js';
import { UsersController } from './users.controller.js';

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
      useFactory: (config: SampleConfig) => ({ servers: config.gearmanServers }),
    }),
  ],
  controllers: [UsersController, EmailController, OrdersController, ReportsController, BatchController, QuotesController],
})
export class WorkerModule {}
