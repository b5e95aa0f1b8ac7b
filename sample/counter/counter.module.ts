import { Module } from '@nestjs/common';
import { GearmanModule } from '../nestjs-gearman.js';
import { SampleConfig, SampleConfigModule } from '../shared/sample-config.js';
import { WordCountController } from '../worker/wordcount.controller.js';

/** A worker that only counts words: `npm run sample:speedup` starts one, then four, of these. */
@Module({
  imports: [
    GearmanModule.forRootAsync({
      imports: [SampleConfigModule],
      inject: [SampleConfig],
      useFactory: (config: SampleConfig) => ({ servers: config.gearmanServers }),
    }),
  ],
  controllers: [WordCountController],
})
export class CounterModule {}
