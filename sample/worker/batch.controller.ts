import { Controller, Logger } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { BatchItem, BatchProgress } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';

const ITEM_TIME_MS = 40;

/**
 * Batch items arrive as background jobs with a priority. When several wait in the queue, the job
 * server hands out the high ones first, then normal, then low; this records the order they start in.
 */
@Controller()
export class BatchController {
  private readonly logger = new Logger(BatchController.name);
  private readonly started = new Map<string, string[]>();

  @EventPattern(Patterns.ProcessBatchItem)
  async process(@Payload() item: BatchItem): Promise<void> {
    const order = this.started.get(item.batchId) ?? [];
    order.push(item.name);
    this.started.set(item.batchId, order);
    this.logger.log(`batch ${item.batchId}: ${item.name} (${item.priority})`);
    await new Promise((resolve) => setTimeout(resolve, ITEM_TIME_MS));
  }

  @MessagePattern(Patterns.BatchProgress)
  progress(@Payload() batchId: string): BatchProgress {
    return { batchId, started: this.started.get(batchId) ?? [] };
  }
}
