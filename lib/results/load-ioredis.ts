import type { Redis, RedisOptions } from 'ioredis';
import { loadOptionalPeer } from '../common/optional-peer.js';

/** @internal */
export type RedisConstructor = new (options: RedisOptions | string) => Redis;

/**
 * ioredis, loaded when a Redis result store first connects: it is an optional peer dependency, so
 * an app that keeps its results elsewhere does not need it installed (GearmanMissingPeerError names
 * it otherwise).
 */
export function loadIoredis(): Promise<RedisConstructor> {
  return loadOptionalPeer<RedisConstructor>('ioredis', '^6.0.0', 'The Redis result store');
}
