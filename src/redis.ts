/**
 * `cross-app-access/redis`: {@link redisTokenStore}, a token store a fleet of processes shares
 * through Redis (encrypted tokens, one acquisition across the fleet, fleet-wide sign-out).
 *
 * @packageDocumentation
 * @module cross-app-access/redis
 */
// The `cross-app-access/redis` entry point: a token store shared by a fleet of processes. It takes
// the application's node-redis or ioredis client (single or cluster); nothing here imports `redis`
// or `ioredis` at run time.
export { redisTokenStore } from './stores/redis.js';
export type { IORedisLike, IORedisSubscriberLike, RedisClientLike, RedisClusterLike, RedisSubscriberLike, RedisTokenStore, RedisTokenStoreOptions } from './stores/redis.js';
export type { EncryptionKey } from './stores/encryption.js';
export type { SharedAcquisition, StoredDocument, StoredToken, TokenStore, TokenStoreHost } from './stores/token-store.js';
