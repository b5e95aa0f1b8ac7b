import { DelayedJobs } from '../../lib/job-server/delayed-jobs.js';
import { Job, Priority } from '../../lib/job-server/job.js';

let nextId = 1;
const job = (data: string) => new Job(nextId++, 'f', '', data, Priority.NORMAL, true);

describe('DelayedJobs', () => {
  test('hands jobs out in due order, skipping the ones taken out', async () => {
    const due: string[] = [];
    let allDue!: () => void;
    const finished = new Promise<void>((resolve) => (allDue = resolve));
    const delayed = new DelayedJobs((ready) => {
      due.push(ready.data);
      if (due.length === 3) allDue();
    });
    const now = Date.now();
    const cancelled = job('cancelled');
    delayed.add(job('third'), now + 90);
    delayed.add(job('first'), now + 30);
    delayed.add(cancelled, now + 40);
    delayed.add(job('second'), now + 60);
    delayed.remove(cancelled);
    expect(cancelled.delayed).toBe(false);
    await finished;
    expect(due).toEqual(['first', 'second', 'third']);
    delayed.close();
  });

  test('many far-future jobs taken out leave none behind, and the rest still come due', async () => {
    const due: string[] = [];
    let fired!: () => void;
    const finished = new Promise<void>((resolve) => (fired = resolve));
    const delayed = new DelayedJobs((ready) => {
      due.push(ready.data);
      fired();
    });
    const far = Array.from({ length: 1000 }, (_, i) => job(`far-${i}`));
    for (const waiting of far) delayed.add(waiting, Date.now() + 3_600_000);
    delayed.add(job('soon'), Date.now() + 20);
    for (const waiting of far) delayed.remove(waiting);
    expect(far.every((waiting) => !waiting.delayed)).toBe(true);
    await finished;
    expect(due).toEqual(['soon']);
    delayed.close();
  });
});
