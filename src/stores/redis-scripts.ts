// The store's Redis side: each operation is one Lua script, so it is atomic and one round trip
// (https://redis.io/docs/latest/develop/programmability/eval-intro/). Every key a script touches is
// declared in KEYS and shares the user's hash tag, so on a Redis Cluster the script runs on the one
// node of that slot (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
// Messages are published by the store after a script, not in it: a sharded channel has a slot of
// its own.

/**
 * The fleet's token, or the fleet lock: KEYS = token, lock, sign-out mark; ARGV = owner, lock TTL
 * (ms), force. Without `force`, a stored value is returned and no lock taken; else the lock is tried
 * too (`SET NX PX`: a holder that dies releases by expiry). Returns { value or nil, 1 if locked
 * here, 1 if another process holds the lock, the user's sign-out mark or nil }.
 */
export const GET_OR_LOCK = `
local m = redis.call('GET', KEYS[3])
local v = redis.call('GET', KEYS[1])
if v and ARGV[3] == '0' then return {v, 0, 0, m} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {v, 1, 0, m} end
return {v, 0, redis.call('EXISTS', KEYS[2]), m}`;

/**
 * Run while an acquisition is under way (it may outlast the lock's TTL and the sign-out mark's:
 * timeouts, retries, Retry-After waits): extends the fleet lock if this process holds it, and
 * returns the user's sign-out mark, so a sign-out this process was not told of still reaches the
 * acquisition before the mark expires. KEYS = lock, sign-out mark; ARGV = owner ('' for none), TTL (ms).
 */
export const EXTEND = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[2])`;

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

/** Releases the lock if this process still holds it: KEYS = lock; ARGV = owner. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Sign-out, first step: sets the user's sign-out mark (a random id: an acquisition that saw another
 * mark, or none, when it started learns of the sign-out), which keeps every save out for a while
 * (as long as a lock can last), and returns the ids in the user's index.
 * KEYS = sign-out mark, index; ARGV = mark TTL (ms), mark id. The second step, {@link DELETE_TOKENS}, deletes
 * them: while the mark stands no token can be added in between, so none is missed.
 */
export const SIGN_OUT = `
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return redis.call('SMEMBERS', KEYS[2])`;

/** Sign-out, second step: KEYS = index, then the tokens it listed. Returns how many tokens were deleted. */
export const DELETE_TOKENS = `
redis.call('DEL', KEYS[1])
local n = 0
for i = 2, #KEYS do n = n + redis.call('DEL', KEYS[i]) end
return n`;

/** A discovery result and its remaining life: KEYS = document. Returns { value or nil, PTTL }. */
export const READ_DOCUMENT = `
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}`;
