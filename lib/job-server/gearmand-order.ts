/**
 * gearmand lists functions (`status`, `prioritystatus`) and jobs (`show jobs`, `show unique jobs`)
 * by walking its hash tables bucket by bucket, newest entry first within a bucket. Listing in that
 * same order makes those replies byte-identical to gearmand's, not just equal as sets.
 */

/** gearmand's bucket count for functions, and its default (`--hashtable-buckets`) for jobs. */
const GEARMAND_BUCKETS = 991;

/** gearmand's hash of a key (Jenkins one-at-a-time on signed chars, in 32-bit arithmetic); keys are latin1 byte strings. */
export function gearmandHash(key: string): number {
  let value = 0;
  for (let i = 0; i < key.length; i++) {
    const byte = key.charCodeAt(i) & 0xff;
    value = (value + (byte > 127 ? byte - 256 : byte)) | 0;
    value = (value + (value << 10)) | 0;
    value ^= value >> 6;
  }
  value = (value + (value << 3)) | 0;
  value ^= value >> 11;
  value = (value + (value << 15)) | 0;
  return value === 0 ? 1 : value >>> 0;
}

/** Items (given oldest first) in the order gearmand's hash table of `key` lists them. */
export function inGearmandOrder<T>(oldestFirst: Iterable<T>, key: (item: T) => string): T[] {
  const entries = [...oldestFirst].map((item, age) => ({ item, age, bucket: gearmandHash(key(item)) % GEARMAND_BUCKETS }));
  entries.sort((a, b) => a.bucket - b.bucket || b.age - a.age);
  return entries.map((entry) => entry.item);
}
