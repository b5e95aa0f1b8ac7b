import { Controller, Logger } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import type { Quote } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';

const PRICING_TIME_MS = 500;

/**
 * An expensive computation. Callers that submit it with the same unique id while it runs share
 * one job: it runs once and every caller gets its result.
 */
@Controller()
export class QuotesController {
  private readonly logger = new Logger(QuotesController.name);
  private computations = 0;

  @MessagePattern(Patterns.PriceQuote)
  async price(@Payload() symbol: string): Promise<Quote> {
    const computation = ++this.computations;
    this.logger.log(`pricing ${symbol} (computation #${computation})`);
    await new Promise((resolve) => setTimeout(resolve, PRICING_TIME_MS));
    const price = 100 + ([...symbol].reduce((sum, char) => sum + char.charCodeAt(0), 0) % 900) / 10;
    return { symbol, price, computation };
  }
}
