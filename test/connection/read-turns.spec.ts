import { ReadSlicer, ReadTurns } from '../../lib/connection/read-turns.js';

describe('ReadTurns and ReadSlicer', () => {
  test('alone, or beside other bulk senders only, a connection gets slices 16 times framesPerTurn', () => {
    const turns = new ReadTurns(8);
    const bulk = new ReadSlicer(turns);
    const otherBulk = new ReadSlicer(turns);
    expect(bulk.nextSlice()).toBe(128);
    expect(otherBulk.nextSlice()).toBe(128);
    // Its own light reads do not count against it.
    bulk.lightRead();
    expect(bulk.nextSlice()).toBe(128);
  });

  test('a light read by another connection between two slices makes the slices small, for 8 slices after the last one', () => {
    const turns = new ReadTurns(8);
    const flood = new ReadSlicer(turns);
    const bystander = new ReadSlicer(turns);
    expect(flood.nextSlice()).toBe(128);
    bystander.nextSlice();
    bystander.lightRead();
    const slices = Array.from({ length: ReadTurns.CONTENDED_SLICES + 1 }, () => flood.nextSlice());
    expect(slices).toEqual([...new Array<number>(ReadTurns.CONTENDED_SLICES).fill(8), 128]);
    // Any light read of the others starts the count again.
    bystander.lightRead();
    expect(flood.nextSlice()).toBe(8);
  });

  test('framesPerTurn must be a whole number ≥ 1', () => {
    expect(() => new ReadTurns(0)).toThrow(RangeError);
    expect(() => new ReadTurns(1.5)).toThrow(RangeError);
  });
});
