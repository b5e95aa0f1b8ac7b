import type { JobServerSnapshot } from '../client/job-server-snapshot.js';

/** Columns padded to their widest cell; numbers right-aligned. */
function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => row[column].length)));
  const numeric = header.map((_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === 'number'));
  return cells
    .map((row) =>
      row
        .map((cell, column) => (numeric[column] ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The summary `nestjs-gearman status` prints: the server, its functions, its workers. */
export function formatStatus(snapshot: JobServerSnapshot): string {
  if (!snapshot.reachable) return `Job server ${snapshot.server}: unreachable (${snapshot.error ?? 'no answer'})\n`;
  const rtt = snapshot.rttMs === undefined ? '' : `, echo ${snapshot.rttMs.toFixed(1)} ms`;
  const lines = [`Job server ${snapshot.server}: up, version ${snapshot.version ?? '?'}${rtt}`, ''];
  if (snapshot.functions.length === 0) {
    lines.push('No functions.');
  } else {
    const byName = [...snapshot.functions].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    lines.push(
      table(
        ['FUNCTION', 'QUEUED', 'RUNNING', 'WORKERS', 'HIGH', 'NORMAL', 'LOW'],
        byName.map((fn) => [
          fn.name,
          fn.queued,
          fn.running,
          fn.workers,
          fn.queuedByPriority?.high ?? '-',
          fn.queuedByPriority?.normal ?? '-',
          fn.queuedByPriority?.low ?? '-',
        ]),
      ),
    );
    const totals = snapshot.functions.reduce((sum, fn) => ({ queued: sum.queued + fn.queued, running: sum.running + fn.running }), {
      queued: 0,
      running: 0,
    });
    lines.push('', `${snapshot.functions.length} functions, ${totals.queued} queued, ${totals.running} running`);
  }
  const running = snapshot.runningJobs ?? [];
  if (running.length > 0) {
    lines.push(
      '',
      table(
        ['RUNNING JOB', 'PROGRESS'],
        running.map((job) => [
          job.handle,
          job.denominator > 0 ? `${progressBar(job.numerator / job.denominator)} ${job.numerator}/${job.denominator}` : '-',
        ]),
      ),
    );
  }
  lines.push('');
  if (snapshot.workers.length === 0) {
    lines.push('No workers.');
  } else {
    lines.push(
      table(
        ['WORKER', 'CLIENT-ID', 'FUNCTIONS'],
        snapshot.workers.map((worker) => [worker.ip, worker.clientId, worker.functions.join(' ')]),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A text progress bar, 20 cells wide. */
function progressBar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * 20);
  return `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}]`;
}
