import { Module } from '@nestjs/common';
import { GearmanModule } from '../nestjs-gearman.js';
import { SampleConfig, SampleConfigModule } from '../shared/sample-config.js';
import { InventoryController } from './inventory.controller.js';

/** The inventory microservice: serves `inventory.reserve`, which the orders service calls. */
@Module({
  imports: [
    GearmanModule.forRootAsync({
      imports: [SampleConfigModule],
      inject: [SampleConfig],
      useFactory: (config: SampleConfig) => ({ servers: config.gearmanServers }),
    }),
  ],
  controllers: [InventoryController],
})
export class InventoryModule {}
