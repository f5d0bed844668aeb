// The store's Redis side: each operation is one Lua script, so it is atomic and one round trip
// (https://redis.io/docs/latest/develop/programmability/eval-intro/). Every key a script touches
// shares the user's hash tag, so with Redis Cluster they live in one slot.

/**
 * The fleet's token, or the fleet lock: KEYS = token, lock; ARGV = owner, lock TTL (ms), force.
 * Without `force`, a stored value is returned and no lock taken; else the lock is tried too
 * (`SET NX PX`: a holder that dies releases by expiry). Returns { value or nil, 1 if locked here,
 * 1 if another process holds the lock }.
 */
export const GET_OR_LOCK = `
local v = redis.call('GET', KEYS[1])
if v and ARGV[3] == '0' then return {v, 0, 0} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {v, 1, 0} end
return {v, 0, redis.call('EXISTS', KEYS[2])}`;

/**
 * Extends the fleet lock while its holder is still acquiring (an acquisition may outlast the lock's
 * TTL: timeouts, retries, Retry-After waits). KEYS = lock; ARGV = owner, TTL (ms). 1 if extended.
 */
export const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/**
 * Saves a sealed token with a TTL equal to its remaining life, and indexes it under its user (the
 * index lives as long as the user's longest token): KEYS = token, user index, sign-out mark;
 * ARGV = value, TTL, id. Nothing is saved while the user's sign-out mark stands: an acquisition
 * that was under way in another process when the user signed out must not bring a token back.
 */
export const SAVE = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`;

/**
 * Compare-and-delete after a 401: drops the token only if it is still the generation that was
 * refused (a token the fleet already replaced stays). KEYS = token; ARGV = generation prefix.
 */
export const DELETE_IF_GENERATION = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

/** Releases the lock if this process still holds it, and wakes the waiters: KEYS = lock; ARGV = owner, channel, message. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`;

/**
 * Sign-out across the fleet: every token in the user's index, the index, a sign-out mark that keeps
 * acquisitions already under way from saving for a while (as long as a lock can last), and a message
 * so every process drops its own copies. KEYS = index, sign-out mark; ARGV = token-name prefix,
 * channel, message, mark TTL (ms).
 */
export const FORGET = `
local ids = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return #ids`;

/** A discovery result and its remaining life: KEYS = document. Returns { value or nil, PTTL }. */
export const READ_DOCUMENT = `
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}`;
