/**
 * The zod schema (src/options/schema.ts) and the option types (src/options/types.ts) are written
 * twice, once for the checks at runtime and once for the reader: these type-level assertions make
 * `npm run typecheck` fail when they drift (an option in one and not the other, or a value one takes
 * and the other refuses). The `it` only gives them a place in the report.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import type { ClientOptions, CrossAppAccessEngineOptions, CrossAppAccessOptions, IdpOptions } from '../src/index.js';
import { clientSchema, engineSchema, idpSchema, retrySchema, schema } from '../src/options/schema.js';

/** Arrays read as mutable: the types promise not to change the caller's arrays (`readonly`), zod's input types do not say. */
type ArraysMutable<T> = { [K in keyof T]: T[K] extends infer V ? (V extends readonly (infer U)[] ? U[] : V) : never };

type RetryOptions = Exclude<NonNullable<CrossAppAccessOptions['retry']>, false>;

/** Options whose schema is a precise type (not a custom check or a one-or-list transform). */
type Precise = 'subjectTokenType' | 'scope' | 'timeout' | 'retry' | 'renewBefore' | 'defaultTokenLifetime' | 'maxStepUps' | 'maxReplayBodyBytes' | 'maxCachedTokens' | 'now' | 'onEvent' | 'checkIdJag';

describe('the options schema and the option types', () => {
  it('name the same options, at every level', () => {
    expectTypeOf<keyof z.input<typeof schema>>().toEqualTypeOf<keyof CrossAppAccessOptions>();
    expectTypeOf<keyof z.input<typeof engineSchema>>().toEqualTypeOf<keyof CrossAppAccessEngineOptions>();
    expectTypeOf<keyof z.input<typeof idpSchema>>().toEqualTypeOf<keyof IdpOptions>();
    expectTypeOf<keyof z.input<typeof clientSchema>>().toEqualTypeOf<keyof ClientOptions>();
    expectTypeOf<keyof z.input<typeof retrySchema>>().toEqualTypeOf<keyof RetryOptions>();
    expect(Object.keys(schema.shape).sort()).toEqual(Object.keys(engineSchema.shape).filter((k) => k !== 'store').concat('idToken').sort());
  });

  it('take the same values where the schema is a precise type', () => {
    // What the schema lets through is what the type allows, and what the type allows the schema's type takes.
    expectTypeOf<Pick<z.output<typeof schema>, Precise>>().toExtend<Pick<CrossAppAccessOptions, Precise>>();
    expectTypeOf<ArraysMutable<Pick<CrossAppAccessOptions, Precise>>>().toExtend<Pick<z.input<typeof schema>, Precise>>();
    expectTypeOf<z.output<typeof idpSchema>>().toExtend<IdpOptions>();
    expectTypeOf<z.output<typeof clientSchema>>().toExtend<ClientOptions>();
    expectTypeOf<z.output<typeof retrySchema>>().toExtend<RetryOptions>();
    expectTypeOf<RetryOptions>().toExtend<z.input<typeof retrySchema>>();
  });
});
