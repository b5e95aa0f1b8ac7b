import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { GearmanContext } from '../nestjs-gearman.js';
import type { ReportRequest, ReportSection, ReportSummary } from '../shared/patterns.js';
import { Patterns } from '../shared/patterns.js';

const SECTION_TIME_MS = 150;

/**
 * The reports service streams: it reports progress (WORK_STATUS) and sends every section as soon
 * as it is ready (WORK_DATA); the summary it returns is the job's result (WORK_COMPLETE). A Nest
 * caller's `send()` sees each section and then the summary as values of one Observable.
 */
@Controller()
export class ReportsController {
  @MessagePattern(Patterns.BuildReport)
  async build(@Payload() request: ReportRequest, @Ctx() context: GearmanContext): Promise<ReportSummary> {
    const sections = Math.min(Math.max(Math.trunc(request.sections) || 1, 1), 20);
    let total = 0;
    for (let section = 1; section <= sections; section++) {
      await new Promise((resolve) => setTimeout(resolve, SECTION_TIME_MS));
      const built = buildSection(request.name, section, sections);
      total += built.rows.reduce((sum, row) => sum + row.value, 0);
      context.sendStatus(section, sections);
      context.sendData(built);
    }
    return { name: request.name, sections, total };
  }
}

function buildSection(name: string, section: number, of: number): ReportSection {
  const regions = ['north', 'south', 'east', 'west'];
  return {
    section,
    of,
    title: `${name}, week ${section}`,
    rows: regions.map((region, index) => ({ label: region, value: ((section * 37 + index * 11) % 50) + 10 })),
  };
}
