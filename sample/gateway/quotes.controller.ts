import { Controller, Get, Param, Query } from '@nestjs/common';
import { firstValueFrom } from 'rxjs';
import { ClientGearman, GearmanRecordBuilder } from '../nestjs-gearman.js';
import type { Quote } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';
import { asHttpErrors } from './rpc-errors.js';

@Controller('quotes')
export class QuotesController {
  constructor(private readonly gearman: ClientGearman) {}

  /**
   * Asks for the same quote `callers` times at once, each call with the unique id `quote:<symbol>`:
   * the job server coalesces them into one job, so the price is computed once and every caller
   * receives that one result.
   */
  @Get(':symbol')
  async quote(@Param('symbol') symbol: string, @Query('callers') callers = '5') {
    const count = Math.min(Math.max(Number(callers) || 1, 1), 50);
    const record = new GearmanRecordBuilder(symbol).setUnique(`quote:${symbol}`).build();
    const quotes = await Promise.all(
      Array.from({ length: count }, () => firstValueFrom(this.gearman.send<Quote>(Patterns.PriceQuote, record).pipe(asHttpErrors()))),
    );
    return { symbol, callers: count, computations: new Set(quotes.map((quote) => quote.computation)).size, quotes };
  }
}
