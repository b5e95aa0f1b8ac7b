import { PacketType } from '../protocol/packet-types.js';

export type JobPriority = 'high' | 'normal' | 'low';

export interface SubmitOptions {
  /** Default 'normal'. */
  priority?: JobPriority;
  /**
   * Jobs with the same function and unique id coalesce into one; '-' coalesces on the payload bytes.
   * At most 64 bytes. A foreground job without one never coalesces; a background job without one
   * (or with '') gets a generated random UUID, as libgearman gives it, so that persistent queues
   * keyed on (unique, function) keep every job.
   */
  unique?: string;
  /** Run the job at this time (SUBMIT_JOB_EPOCH); a number is seconds since the epoch. Background jobs only, normal priority. */
  runAt?: Date | number;
}

const FOREGROUND: Record<JobPriority, PacketType> = {
  high: PacketType.SUBMIT_JOB_HIGH,
  normal: PacketType.SUBMIT_JOB,
  low: PacketType.SUBMIT_JOB_LOW,
};

const BACKGROUND: Record<JobPriority, PacketType> = {
  high: PacketType.SUBMIT_JOB_HIGH_BG,
  normal: PacketType.SUBMIT_JOB_BG,
  low: PacketType.SUBMIT_JOB_LOW_BG,
};

/** The SUBMIT_JOB variant for a priority, foreground or background. Throws TypeError on an unknown priority. */
export function submitPacketType(priority: JobPriority | undefined, background: boolean): PacketType {
  const type = (background ? BACKGROUND : FOREGROUND)[priority ?? 'normal'];
  if (type === undefined) throw new TypeError(`Unknown job priority ${JSON.stringify(priority)}: use 'high', 'normal' or 'low'`);
  return type;
}

/** runAt as whole seconds since the epoch. Throws TypeError on an invalid date or number. */
export function epochSeconds(runAt: Date | number): number {
  const seconds = runAt instanceof Date ? Math.floor(runAt.getTime() / 1000) : runAt;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError(`Invalid runAt ${String(runAt)}: use a Date or seconds since the epoch`);
  }
  return Math.floor(seconds);
}
