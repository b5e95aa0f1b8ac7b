/**
 * Keeps the connections of one server from holding one another up: what one connection sent is
 * handled in slices, one per turn of the event loop (FramedSocket), and this decides how big.
 *
 * A read is light when it held no more than `framesPerTurn` frames (a request and its reply, a
 * worker's result): those are the reads a flood would delay. A connection with more to handle
 * gets slices of `framesPerTurn` frames while other connections make light reads between its
 * slices, and for `CONTENDED_SLICES` slices after the last one; otherwise (it reads alone, or
 * only beside other bulk senders, for whom yielding buys nothing) slices `ALONE_FACTOR` times
 * bigger, so bulk work is not slowed by yielding to nobody. A light newcomer waits for at most
 * one bigger slice. Counters only: no timer, no clock, no work per turn.
 */
export class ReadTurns {
  /** How many more frames a slice holds when no other connection makes light reads. */
  static readonly ALONE_FACTOR = 16;
  /** Slices after the last light read of another connection during which slices stay small. */
  static readonly CONTENDED_SLICES = 8;
  readonly framesAlone: number;
  private light = 0;

  constructor(readonly framesPerTurn: number) {
    if (!Number.isInteger(framesPerTurn) || framesPerTurn < 1) {
      throw new RangeError(`framesPerTurn must be a whole number ≥ 1, got ${framesPerTurn}`);
    }
    this.framesAlone = framesPerTurn * ReadTurns.ALONE_FACTOR;
  }

  /** Light reads made so far, by every connection. */
  get lightReads(): number {
    return this.light;
  }

  /** A connection handled all it had read, in no more than framesPerTurn frames. */
  lightRead(): void {
    this.light++;
  }
}

/** One connection's view of the shared ReadTurns: the size of its next slice. */
export class ReadSlicer {
  private seenLight = 0;
  private ownLight = 0;
  private ownLightSeen = 0;
  private contended = 0;

  constructor(private readonly turns: ReadTurns) {}

  get framesPerTurn(): number {
    return this.turns.framesPerTurn;
  }

  /** Frames the next slice may hold. */
  nextSlice(): number {
    const turns = this.turns;
    const othersLight = turns.lightReads - this.seenLight - (this.ownLight - this.ownLightSeen);
    this.seenLight = turns.lightReads;
    this.ownLightSeen = this.ownLight;
    if (othersLight > 0) this.contended = ReadTurns.CONTENDED_SLICES;
    else if (this.contended > 0) this.contended--;
    return this.contended > 0 ? turns.framesPerTurn : turns.framesAlone;
  }

  /** This connection's slice handled all it had, in no more than framesPerTurn frames. */
  lightRead(): void {
    this.ownLight++;
    this.turns.lightRead();
  }
}
