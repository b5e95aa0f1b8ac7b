import fc from 'fast-check';
import { Job, Priority } from '../../lib/job-server/job.js';
import { JobIndex } from '../../lib/job-server/job-index.js';

let nextId = 1;
const job = (unique: string, data = 'payload') => new Job(nextId++, 'f', unique, data, Priority.NORMAL, true);

describe('JobIndex', () => {
  test('finds jobs by unique id or by payload, compared byte for byte', () => {
    const byUnique = new JobIndex('unique');
    const byPayload = new JobIndex('payload');
    const a = job('a', 'same');
    const b = job('-', '\u00ff\u0000bytes');
    byUnique.add(a);
    byPayload.add(b);
    expect(byUnique.get('a')).toBe(a);
    expect(byUnique.get('same')).toBeUndefined();
    expect(byPayload.get('\u00ff\u0000bytes')).toBe(b);
    expect(byPayload.get('\u00ff\u0000byte')).toBeUndefined();
  });

  test('behaves as a Map under any sequence of adds and deletes, growing and shrinking', () => {
    const operation = fc.oneof(fc.record({ add: fc.string({ maxLength: 6 }) }), fc.record({ remove: fc.nat(400) }));
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 400 }), (operations) => {
        const index = new JobIndex('unique');
        const model = new Map<string, Job>();
        for (const step of operations) {
          if ('add' in step) {
            const key = `k${step.add}`;
            if (model.has(key)) continue;
            const added = job(key);
            index.add(added);
            model.set(key, added);
          } else {
            const keys = [...model.keys()];
            if (keys.length === 0) continue;
            const key = keys[step.remove % keys.length];
            index.delete(model.get(key)!);
            model.delete(key);
          }
          expect(index.size).toBe(model.size);
        }
        for (const [key, expected] of model) expect(index.get(key)).toBe(expected);
        expect(index.get('absent')).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  test('deleting a job it does not hold changes nothing', () => {
    const index = new JobIndex('unique');
    const held = job('x');
    index.add(held);
    index.delete(job('x'));
    expect(index.get('x')).toBe(held);
    expect(index.size).toBe(1);
  });
});
