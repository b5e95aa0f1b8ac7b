import { Controller, Get } from '@nestjs/common';

/** What the gateway offers, for a first `curl`. */
@Controller()
export class HomeController {
  @Get()
  routes() {
    return {
      'POST /users': 'register a user (send) and queue the welcome e-mail (emit)',
      'GET /emails': 'the e-mails the background jobs have sent',
      'POST /orders': 'place an order: the orders service reserves stock with the inventory service',
      'GET /reports/:name?sections=5': 'build a report, streamed as server-sent events with progress',
      'POST /batch': 'queue background jobs with high, normal and low priority',
      'GET /batch/:batchId': 'the order in which the batch items started',
      'GET /quotes/:symbol?callers=5': 'concurrent calls with one unique id, computed once',
      'POST /wordcount {"chunks":12}': 'count the words of a large text as a background batch: one sub-job per chunk, then a gather job',
      'GET /wordcount/:handle': 'how far the word count got (chunks counted / chunks), and its result once gathered',
    };
  }
}
