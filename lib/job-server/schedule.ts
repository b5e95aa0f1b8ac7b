/**
 * SUBMIT_JOB_SCHED: the five cron fields (minute, hour, day of month, month, day of week), each
 * empty or `*` (any), a number, a list `1,15`, a range `1-5` or a step `*\/10`, `0-30/5`.
 * gearmand rejects the packet; here the job runs once, at the next minute (UTC) the fields match.
 */

const FIELD_RANGES: readonly [number, number][] = [
  [0, 59], // minute
  [0, 23], // hour
  [1, 31], // day of month
  [1, 12], // month
  [0, 6], // day of week, 0 = Sunday (7 is accepted as Sunday too)
];

const FIELD_NAMES = ['minute', 'hour', 'day of month', 'month', 'day of week'];

export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
}

/** Parses one field into the set of values it allows. Throws ScheduleError. */
function parseField(text: string, index: number): Set<number> {
  const [min, max] = FIELD_RANGES[index];
  const allowed = new Set<number>();
  const source = text.trim() === '' ? '*' : text.trim();
  for (const part of source.split(',')) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!match) throw new ScheduleError(`bad ${FIELD_NAMES[index]} field ${JSON.stringify(text)}`);
    const from = match[1] === '*' ? min : Number(match[2]);
    const to = match[1] === '*' ? max : match[3] !== undefined ? Number(match[3]) : match[4] !== undefined ? max : from;
    const step = match[4] !== undefined ? Number(match[4]) : 1;
    const top = index === 4 ? 7 : max;
    if (from < min || to > top || from > to || step < 1) {
      throw new ScheduleError(`${FIELD_NAMES[index]} field ${JSON.stringify(text)} is outside ${min}-${max}`);
    }
    for (let value = from; value <= to; value += step) allowed.add(index === 4 && value === 7 ? 0 : value);
  }
  return allowed;
}

/**
 * The first whole minute strictly after `from` (ms since the epoch) that matches the fields, in
 * ms since the epoch. Throws ScheduleError on a bad field or when nothing matches within 5 years.
 */
export function nextScheduledTime(fields: readonly string[], from: number): number {
  const [minutes, hours, days, months, weekdays] = fields.map((field, index) => parseField(field, index));
  const date = new Date(Math.floor(from / 60000) * 60000 + 60000);
  const limit = from + 5 * 366 * 24 * 3600 * 1000;
  while (date.getTime() <= limit) {
    if (!months.has(date.getUTCMonth() + 1)) {
      date.setUTCMonth(date.getUTCMonth() + 1, 1);
      date.setUTCHours(0, 0);
    } else if (!days.has(date.getUTCDate()) || !weekdays.has(date.getUTCDay())) {
      date.setUTCDate(date.getUTCDate() + 1);
      date.setUTCHours(0, 0);
    } else if (!hours.has(date.getUTCHours())) {
      date.setUTCHours(date.getUTCHours() + 1, 0);
    } else if (!minutes.has(date.getUTCMinutes())) {
      date.setUTCMinutes(date.getUTCMinutes() + 1);
    } else {
      return date.getTime();
    }
  }
  throw new ScheduleError(`no time within five years matches ${JSON.stringify(fields.join(' '))}`);
}
