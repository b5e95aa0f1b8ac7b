import { Controller, Param, Query, Sse, type MessageEvent } from '@nestjs/common';
import { Observable } from 'rxjs';
import { ClientGearman, decodePayload, encodePayload, type ClientJob } from '../nestjs-gearman.js';
import type { ReportRequest } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';
import { toHttpException } from './rpc-errors.js';

@Controller('reports')
export class ReportsController {
  constructor(private readonly gearman: ClientGearman) {}

  /**
   * Server-sent events while the report is built: `progress` for every WORK_STATUS, `section` for
   * every partial result (WORK_DATA), then `summary` (WORK_COMPLETE), or `error`.
   *
   * `send()` would give the sections and the summary as one Observable; the progress numbers
   * (WORK_STATUS) are visible on the underlying `GearmanClient`'s job, which `connect()` hands out.
   */
  @Sse(':name')
  build(@Param('name') name: string, @Query('sections') sections = '5'): Observable<MessageEvent> {
    const request: ReportRequest = { name, sections: Number(sections) };
    return new Observable<MessageEvent>((events) => {
      let job: ClientJob | undefined;
      let unsubscribed = false;
      this.gearman.connect().then(
        (client) => {
          if (unsubscribed) return;
          job = client.submitJob(Patterns.BuildReport, encodePayload(request));
          job.on('status', (done: number, total: number) => {
            events.next({ type: 'progress', data: { done, total, percent: Math.round((done / total) * 100) } });
          });
          job.on('data', (section: Buffer) => events.next({ type: 'section', data: decodePayload(section) as object }));
          job.result.then(
            (summary) => {
              events.next({ type: 'summary', data: decodePayload(summary) as object });
              events.complete();
            },
            (error: unknown) => {
              events.next({ type: 'error', data: toHttpException(error).getResponse() });
              events.complete();
            },
          );
        },
        (error: unknown) => {
          events.next({ type: 'error', data: toHttpException(error).getResponse() });
          events.complete();
        },
      );
      // The HTTP client went away: stop listening for the job (Gearman cannot cancel it).
      return () => {
        unsubscribed = true;
        job?.release();
      };
    });
  }
}
