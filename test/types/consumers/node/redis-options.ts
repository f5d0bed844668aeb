// Under exactOptionalPropertyTypes, every optional option of redisTokenStore takes an explicit
// `undefined` (a value from process.env), as it does at run time, where it means the default. A
// new option declared without `| undefined` fails here.
import { createClient } from 'redis';
import { redisTokenStore, type RedisTokenStoreOptions } from 'cross-app-access/redis';

/** The keys of T that may be left out. */
type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];
/** Each optional key of T, set to undefined. */
type AllUndefined<T> = { [K in OptionalKeys<T>]: undefined };

declare function allUndefined<T>(): AllUndefined<T>;

export const options: Pick<RedisTokenStoreOptions, OptionalKeys<RedisTokenStoreOptions>> = allUndefined<RedisTokenStoreOptions>();

const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
export const store = redisTokenStore({
  client,
  prefix: process.env.XAA_PREFIX,
  namingKey: process.env.XAA_NAMING_KEY,
  encryptionKeys: [process.env.XAA_TOKEN_KEY ?? ''],
  max: process.env.XAA_MAX ? Number(process.env.XAA_MAX) : undefined,
});
