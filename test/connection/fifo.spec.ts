import fc from 'fast-check';
import { Fifo } from '../../lib/connection/fifo.js';

describe('Fifo', () => {
  test('behaves as an array queue under any mix of push and shift', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer(), fc.constant<'shift'>('shift'), fc.constant<'all'>('all')), { maxLength: 3000 }),
        (ops) => {
          const fifo = new Fifo<number>();
          const model: number[] = [];
          for (const op of ops) {
            if (op === 'shift') expect(fifo.shift()).toBe(model.shift());
            else if (op === 'all') expect(fifo.takeAll()).toEqual(model.splice(0));
            else {
              fifo.push(op);
              model.push(op);
            }
            expect(fifo.length).toBe(model.length);
            expect(fifo.peek()).toBe(model[0]);
          }
        },
      ),
    );
  });

  test('keeps order across compaction of a long-lived queue', () => {
    const fifo = new Fifo<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) fifo.push(next++);
      for (let i = 0; i < 90; i++) expect(fifo.shift()).toBe(expected++);
    }
    expect(fifo.length).toBe(500);
    expect(fifo.takeAll()[0]).toBe(expected);
  });
});
