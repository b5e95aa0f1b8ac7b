import { nextScheduledTime, ScheduleError } from '../../lib/job-server/schedule.js';

const at = (iso: string) => Date.parse(iso);

describe('SUBMIT_JOB_SCHED cron fields', () => {
  test('all wildcards (or empty fields): the next whole minute', () => {
    expect(nextScheduledTime(['*', '*', '*', '*', '*'], at('2026-03-01T10:15:30Z'))).toBe(at('2026-03-01T10:16:00Z'));
    expect(nextScheduledTime(['', '', '', '', ''], at('2026-03-01T10:15:00Z'))).toBe(at('2026-03-01T10:16:00Z'));
  });

  test('fixed minute and hour roll over to the next day', () => {
    expect(nextScheduledTime(['30', '9', '*', '*', '*'], at('2026-03-01T10:00:00Z'))).toBe(at('2026-03-02T09:30:00Z'));
  });

  test('lists, ranges and steps', () => {
    expect(nextScheduledTime(['*/15', '*', '*', '*', '*'], at('2026-03-01T10:16:00Z'))).toBe(at('2026-03-01T10:30:00Z'));
    expect(nextScheduledTime(['0', '8-9', '*', '*', '*'], at('2026-03-01T09:30:00Z'))).toBe(at('2026-03-02T08:00:00Z'));
    expect(nextScheduledTime(['5,50', '*', '*', '*', '*'], at('2026-03-01T10:06:00Z'))).toBe(at('2026-03-01T10:50:00Z'));
  });

  test('day of month, month and day of week (0 and 7 are Sunday)', () => {
    expect(nextScheduledTime(['0', '0', '1', '1', '*'], at('2026-03-01T00:00:00Z'))).toBe(at('2027-01-01T00:00:00Z'));
    // 2026-03-01 is a Sunday; the next Monday is the 2nd.
    expect(nextScheduledTime(['0', '12', '*', '*', '1'], at('2026-03-01T13:00:00Z'))).toBe(at('2026-03-02T12:00:00Z'));
    expect(nextScheduledTime(['0', '12', '*', '*', '7'], at('2026-03-02T13:00:00Z'))).toBe(at('2026-03-08T12:00:00Z'));
  });

  test('bad fields and impossible dates throw ScheduleError', () => {
    expect(() => nextScheduledTime(['60', '*', '*', '*', '*'], 0)).toThrow(ScheduleError);
    expect(() => nextScheduledTime(['x', '*', '*', '*', '*'], 0)).toThrow(/bad minute field/);
    expect(() => nextScheduledTime(['0', '0', '31', '2', '*'], 0)).toThrow(/no time within five years/);
  });
});
