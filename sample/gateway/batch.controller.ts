import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { firstValueFrom } from 'rxjs';
import { ClientGearman, GearmanRecordBuilder } from '../nestjs-gearman.js';
import type { BatchItem, BatchProgress, Priority } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';
import { asHttpErrors } from './rpc-errors.js';

const DEFAULT_ITEMS: { name: string; priority: Priority }[] = [
  { name: 'archive-logs', priority: 'low' },
  { name: 'rebuild-index', priority: 'low' },
  { name: 'nightly-report', priority: 'normal' },
  { name: 'refresh-cache', priority: 'normal' },
  { name: 'password-reset', priority: 'high' },
  { name: 'payment-receipt', priority: 'high' },
];

@Controller('batch')
export class BatchController {
  constructor(private readonly gearman: ClientGearman) {}

  /**
   * Queues every item as a background job with its priority (`GearmanRecordBuilder.setPriority`),
   * all at once, lowest first. Jobs that wait together are handed out high, normal, then low.
   */
  @Post()
  async submit(@Body() body: { items?: { name: string; priority: Priority }[] } = {}) {
    const batchId = randomUUID().slice(0, 8);
    const items = body.items?.length ? body.items : DEFAULT_ITEMS;
    const jobs = await Promise.all(
      items.map(({ name, priority }) => {
        const record = new GearmanRecordBuilder<BatchItem>({ batchId, name, priority }).setPriority(priority).build();
        return firstValueFrom(this.gearman.emit<string>(Patterns.ProcessBatchItem, record).pipe(asHttpErrors()));
      }),
    );
    return { batchId, submitted: items.map((item, index) => ({ ...item, job: jobs[index] })) };
  }

  /** The order in which the worker started the batch's items. */
  @Get(':batchId')
  progress(@Param('batchId') batchId: string): Promise<BatchProgress> {
    return firstValueFrom(this.gearman.send<BatchProgress>(Patterns.BatchProgress, batchId).pipe(asHttpErrors()));
  }
}
