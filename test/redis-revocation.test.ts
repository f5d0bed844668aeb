/**
 * The retry after a 401 in a fleet: the token the store holds may be another process's, issued
 * before the same revocation. Two engines with their own Redis clients stand for two processes
 * (they share nothing but a real `redis-server`), against the real loopback IdP, authorization
 * server and MCP server. The multi-process soak is redis-soak.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { useRedisFleet } from './helpers/redis-fleet.js';
import { skipRedis } from './servers/redis-server.js';

const fleet = useRedisFleet();

describe.skipIf(skipRedis)('after a revocation, the retry carries a token that can be expected to work', () => {
  it('401 for A while the store holds B, another process\'s token issued before the revocation: B is tried, refused, and one token acquired after that refusal serves the request', async () => {
    const { stack } = fleet;
    const one = await fleet.member();
    const two = await fleet.member();
    expect(await one.call()).toBe(200); // A: acquired by one, saved to Redis
    const a = await one.token();
    expect(await two.call()).toBe(200); // two takes A from Redis
    stack.as.revoke(a);
    expect(await two.call()).toBe(200); // two: 401 for A, acquires B, saves it
    const b = await two.token();
    expect(b).not.toBe(a);
    expect(two.acquisitions()).toBe(1);

    // The authorization server revokes the user's tokens: B too. One still holds A.
    stack.as.revokeAll();
    const sentBefore = stack.mcp.requests.length;
    expect(await one.call()).toBe(200);
    const sent = stack.mcp.requests.slice(sentBefore).map((r) => r.authorization?.replace(/^Bearer /, ''));
    // A (refused), B (received after A, from the store: refused), then one acquired after that refusal.
    expect(sent.slice(0, 2)).toEqual([a, b]);
    expect(sent).toHaveLength(3);
    const c = sent[2]!;
    expect(stack.as.verifyAccessToken(c)).toBeDefined();
    expect(one.acquisitions()).toBe(2);
    // And the fleet goes on with it: two's next call picks it up from Redis without acquiring.
    expect(await two.call()).toBe(200);
    expect(two.acquisitions()).toBe(1);
    expect(await two.token()).toBe(c);
  });

});
