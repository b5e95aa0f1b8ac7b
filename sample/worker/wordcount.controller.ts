import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { ChunkCount, TextChunk, WordCount } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';

/** How long reading one chunk "from storage" takes: the sub-jobs wait on I/O, as real ones do. */
const READ_TIME_MS = Number(process.env.SAMPLE_CHUNK_READ_MS ?? 40);

/**
 * The split task's two halves. Every chunk of the text is a sub-job of its own (any worker may take
 * it, in any process); once all are counted, the gather job gets their outcomes in chunk order and
 * merges them. Neither knows it is part of a batch.
 */
@Controller()
export class WordCountController {
  @MessagePattern(Patterns.CountWords)
  async count(@Payload() chunk: TextChunk): Promise<ChunkCount> {
    await new Promise((resolve) => setTimeout(resolve, READ_TIME_MS));
    const counts: Record<string, number> = {};
    let words = 0;
    for (const word of chunk.text.toLowerCase().match(/[a-z']+/g) ?? []) {
      counts[word] = (counts[word] ?? 0) + 1;
      words++;
    }
    return { chunk: chunk.chunk, words, counts };
  }

  /** The gather step: the outcomes of every chunk, in order (`{ index, value }` or `{ index, error }`). */
  @MessagePattern(Patterns.MergeCounts)
  merge(@Payload() outcomes: { index: number; value?: ChunkCount; error?: unknown }[]): WordCount {
    const totals = new Map<string, number>();
    let words = 0;
    for (const { value } of outcomes) {
      if (!value) continue;
      words += value.words;
      for (const [word, count] of Object.entries(value.counts)) totals.set(word, (totals.get(word) ?? 0) + count);
    }
    const top = [...totals]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 5)
      .map(([word, count]) => ({ word, count }));
    return { chunks: outcomes.length, words, distinct: totals.size, top };
  }
}
