// Under exactOptionalPropertyTypes, every optional option takes an explicit `undefined` (a value from
// process.env, or a conditional), as it does at run time. A new option declared without
// `| undefined` fails here.
import type { ClientOptions, CrossAppAccessOptions, IdpOptions } from 'cross-app-access';

/** The keys of T that may be left out. */
type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];
/** Each optional key of T, set to undefined. */
type AllUndefined<T> = { [K in OptionalKeys<T>]: undefined };
type RetryObject = Exclude<NonNullable<CrossAppAccessOptions['retry']>, false>;

declare function allUndefined<T>(): AllUndefined<T>;

export const options: Pick<CrossAppAccessOptions, OptionalKeys<CrossAppAccessOptions>> = allUndefined<CrossAppAccessOptions>();
export const idp: Pick<IdpOptions, OptionalKeys<IdpOptions>> = allUndefined<IdpOptions>();
export const client: Pick<ClientOptions, OptionalKeys<ClientOptions>> = allUndefined<ClientOptions>();
export const retry: Pick<RetryObject, OptionalKeys<RetryObject>> = allUndefined<RetryObject>();
