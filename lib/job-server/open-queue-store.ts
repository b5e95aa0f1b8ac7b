import type { GearmanQueueStoreError } from '../common/errors.js';
import { MemoryQueueStore } from './memory-queue-store.js';
import type { QueueStore, QueueStoreOptions } from './queue-store.js';
import { openSqliteQueueStore } from './sqlite-queue-store.js';

/** The store the `queue` option names; the memory store when none is given. */
export async function openQueueStore(
  options: QueueStoreOptions | undefined,
  onWriteError?: (error: GearmanQueueStoreError) => void,
): Promise<QueueStore> {
  const type = options?.type ?? 'memory';
  if (type === 'memory') return new MemoryQueueStore();
  if (type === 'sqlite') return openSqliteQueueStore(options as Extract<QueueStoreOptions, { type: 'sqlite' }>, onWriteError);
  throw new TypeError(`Unknown job queue type ${JSON.stringify(type)}: use 'memory' or 'sqlite'`);
}
