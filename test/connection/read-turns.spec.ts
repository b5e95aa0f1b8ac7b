import { ReadTurns } from '../../lib/connection/read-turns.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('ReadTurns', () => {
  test('a reader alone gets 16 times framesPerTurn; two readers in one turn get framesPerTurn each', async () => {
    const turns = new ReadTurns(8);
    const never = 0;
    expect(turns.enter(never)).toBe(128);
    const a = turns.turn;
    // The same reader again in the same turn is still alone.
    expect(turns.enter(a)).toBe(128);
    expect(turns.enter(never)).toBe(8);
    expect(turns.enter(a)).toBe(8);
    await nextTurn();
    // Contention lasts for the next turns.
    expect(turns.enter(a)).toBe(8);
  });

  test(`after ${ReadTurns.CONTENDED_TURNS} turns with a single reader, that reader is alone again`, async () => {
    const turns = new ReadTurns(4);
    turns.enter(0);
    turns.enter(-1);
    let last = turns.turn;
    const budgets: number[] = [];
    for (let i = 0; i < ReadTurns.CONTENDED_TURNS + 2; i++) {
      await nextTurn();
      budgets.push(turns.enter(last));
      last = turns.turn;
    }
    expect(budgets.slice(0, ReadTurns.CONTENDED_TURNS - 1).every((budget) => budget === 4)).toBe(true);
    expect(budgets.at(-1)).toBe(64);
  });

  test('framesPerTurn must be a whole number ≥ 1', () => {
    expect(() => new ReadTurns(0)).toThrow(RangeError);
    expect(() => new ReadTurns(1.5)).toThrow(RangeError);
  });
});
