/** A fresh loopback {@link Stack} for each test of a file (or `describe`), closed after it. */
import { afterEach, beforeEach } from 'vitest';
import type { CrossAppAccessOptions } from '../../src/index.js';
import { startStack, type Stack } from '../servers/stack.js';
import { stackOptions } from './stack-options.js';

export interface StackFixture {
  /** The running test's stack. */
  readonly stack: Stack;
  /** {@link stackOptions} for the running test's stack. */
  options(overrides?: Partial<CrossAppAccessOptions>): CrossAppAccessOptions;
}

/** Registers the hooks that start a stack before each test and close it after. */
export function useStack(): StackFixture {
  let current: Stack | undefined;
  beforeEach(async () => {
    current = await startStack();
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  const fixture: StackFixture = {
    get stack() {
      if (!current) throw new Error('the stack runs only during a test');
      return current;
    },
    options: (overrides = {}) => stackOptions(fixture.stack, overrides),
  };
  return fixture;
}
