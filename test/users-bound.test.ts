/**
 * The users an engine remembers are bounded (100,000): past the bound, the least recently seen user
 * is forgotten, never the one just added; a user seen since is spared (second-chance order). A user
 * forgotten this way loses nothing it needs: its tokens stay in the store.
 */
import { describe, expect, it } from 'vitest';
import { Users } from '../src/engine/users.js';

const BOUND = 100_000;

describe('Users past the bound', () => {
  it('drops the least recently seen, spares one seen since, and never the one just added', () => {
    const users = new Users();
    const first = users.get('u0');
    const second = users.get('u1');
    for (let i = 2; i < BOUND; i++) users.get(`u${i}`);
    users.get('u0'); // seen again
    const added = users.get(`u${BOUND}`);
    expect(first.current).toBe(true);
    expect(second.current).toBe(false);
    expect(added.current).toBe(true);
    // The key starts afresh: a new state, not the dropped one.
    expect(users.get('u1')).not.toBe(second);
    expect(users.get('u0')).toBe(first);
  });

  it('a user at each of two IdPs is two users, and forget drops both', () => {
    const users = new Users();
    const acme = users.get('42', 'https://acme.example');
    const globex = users.get('42', 'https://globex.example');
    const plain = users.get('42');
    expect(new Set([acme, globex, plain]).size).toBe(3);
    users.forget('42');
    expect([acme.current, globex.current, plain.current]).toEqual([false, false, false]);
  });
});
