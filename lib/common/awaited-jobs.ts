/**
 * Foreground jobs that clients of this process are waiting for, counted by function name.
 *
 * A worker of the same process that serves one of those functions lends its concurrency a slot
 * for each: a handler that calls its own app through Gearman waits for a job only this process
 * may be free to run, and with every slot held by such callers nothing would run it. The count
 * also covers calls made outside any handler (an HTTP route of the same app), which then get a
 * slot of their own, as every call to a Nest TCP microservice in the caller's own process does.
 */
export type AwaitedJobsListener = (functionName: string, change: 1 | -1) => void;

const counts = new Map<string, number>();
const listeners = new Set<AwaitedJobsListener>();

/** A client of this process submitted a foreground job and waits for its result. */
export function awaitingJob(functionName: string): void {
  counts.set(functionName, (counts.get(functionName) ?? 0) + 1);
  for (const listener of listeners) listener(functionName, 1);
}

/** That job ended (result, failure, release or lost connection). */
export function awaitedJobEnded(functionName: string): void {
  const count = (counts.get(functionName) ?? 0) - 1;
  if (count > 0) counts.set(functionName, count);
  else counts.delete(functionName);
  for (const listener of listeners) listener(functionName, -1);
}

/** Foreground jobs of this function that clients of this process wait for now. */
export function awaitedJobs(functionName: string): number {
  return counts.get(functionName) ?? 0;
}

/** Hears every change; returns the function that stops it. */
export function onAwaitedJobs(listener: AwaitedJobsListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
