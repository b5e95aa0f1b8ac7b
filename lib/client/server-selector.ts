/** 32-bit FNV-1a: a fast, stable hash so the same unique id always goes to the same server. */
function fnv1a(bytes: Buffer): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i];
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Picks a server for each job among those that are up. A job with a unique id goes where the
 * id hashes (the first server up from there), so coalescing submits meet on one server; unique `-`
 * coalesces on the payload, so the payload is hashed. Other jobs go round-robin.
 */
export class ServerSelector<T extends { readonly isConnected: boolean }> {
  private next = 0;

  constructor(private readonly servers: readonly T[]) {}

  pick(unique: string, data: Buffer | string): T | undefined {
    const count = this.servers.length;
    if (count === 1) return this.servers[0].isConnected ? this.servers[0] : undefined;
    let start: number;
    if (unique === '') {
      start = this.next;
      this.next = (this.next + 1) % count;
    } else {
      const key = unique === '-' ? (typeof data === 'string' ? Buffer.from(data) : data) : Buffer.from(unique);
      start = fnv1a(key) % count;
    }
    for (let i = 0; i < count; i++) {
      const server = this.servers[(start + i) % count];
      if (server.isConnected) return server;
    }
    return undefined;
  }
}
