import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ClientGearman } from '../nestjs-gearman.js';
import type { TextChunk, WordCount, WordCountStatus } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';
import { sampleText } from '../shared/sample-text.js';
import { toHttpException } from './rpc-errors.js';

/**
 * A split task: a large text counted chunk by chunk. The gateway submits it as one background batch
 * (`emitBatch`) and answers at once with the batch's handle; the job server runs a sub-job per chunk
 * on whatever workers there are, then the gather job. Any later request (any app, any process) asks
 * how far it got, and for the result, by that handle.
 */
@Controller('wordcount')
export class WordCountController {
  constructor(private readonly gearman: ClientGearman) {}

  @Post()
  @HttpCode(202)
  async start(@Body() body: { chunks?: number } = {}): Promise<{ handle: string; chunks: number }> {
    const chunks = Math.min(Math.max(Math.trunc(body.chunks ?? 12) || 1, 1), 500);
    const items: TextChunk[] = sampleText(chunks).map((text, chunk) => ({ chunk, text }));
    try {
      const handle = await this.gearman.emitBatch(Patterns.CountWords, items, { gather: Patterns.MergeCounts });
      return { handle, chunks };
    } catch (error) {
      throw toHttpException(error);
    }
  }

  @Get(':handle')
  async status(@Param('handle') handle: string): Promise<WordCountStatus> {
    try {
      const state = await this.gearman.getResult<WordCount>(handle);
      if (state.state === 'unknown') return { handle, state: 'unknown', progress: { done: 0, of: 0 } };
      const progress = { done: state.progress.numerator, of: state.progress.denominator };
      if (state.state === 'completed') return { handle, state: 'completed', progress, result: state.value };
      if (state.state === 'failed') return { handle, state: 'failed', progress, error: state.error };
      return { handle, state: state.state, progress };
    } catch (error) {
      throw toHttpException(error);
    }
  }
}
