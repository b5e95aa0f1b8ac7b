/**
 * Shares the turns of the event loop among the connections of one server that have frames to
 * handle. A connection that reads while others read too handles at most `framesPerTurn` frames
 * before the others get their turn; one that has read alone for a while takes `ALONE_FACTOR` times
 * more, so that a single bulk producer is not slowed by yielding to nobody. A newcomer waits for at
 * most one such longer slice, after which every reader is held to the shorter one until
 * `CONTENDED_TURNS` turns pass with a single reader. Costs a counter update per read and one
 * setImmediate per turn that had reads.
 */
export class ReadTurns {
  /** How many more frames a connection that reads alone may handle per turn. */
  static readonly ALONE_FACTOR = 16;
  /** Turns after the last one with several readers during which the shorter slice still holds. */
  static readonly CONTENDED_TURNS = 8;
  private current = 1;
  private readersNow = 0;
  private lastContended = -ReadTurns.CONTENDED_TURNS;
  private ending = false;
  private readonly framesAlone: number;
  private readonly endTurn = () => {
    if (this.readersNow > 1) this.lastContended = this.current;
    this.readersNow = 0;
    this.current++;
    this.ending = false;
  };

  constructor(readonly framesPerTurn: number) {
    if (!Number.isInteger(framesPerTurn) || framesPerTurn < 1) {
      throw new RangeError(`framesPerTurn must be a whole number ≥ 1, got ${framesPerTurn}`);
    }
    this.framesAlone = framesPerTurn * ReadTurns.ALONE_FACTOR;
  }

  /** The turn now: a reader keeps it, to say whether it already read in this one. */
  get turn(): number {
    return this.current;
  }

  /** A reader is about to handle frames; `lastTurn` is the turn it last read in. Returns how many it may handle now. */
  enter(lastTurn: number): number {
    if (!this.ending) {
      this.ending = true;
      setImmediate(this.endTurn);
    }
    if (lastTurn !== this.current) this.readersNow++;
    const contended = this.readersNow > 1 || this.current - this.lastContended <= ReadTurns.CONTENDED_TURNS;
    return contended ? this.framesPerTurn : this.framesAlone;
  }
}
