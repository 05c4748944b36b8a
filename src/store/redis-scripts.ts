// The Lua the Redis store runs. Each script is one atomic step on one session's keys: Redis runs a
// script to the end before any other command, so the fencing check and the write it guards cannot be
// separated by another node's lease takeover. Every refusal is decided before the first write, so a
// refused script changed nothing.
//
// A session's keys (see sessionKeys): 1 meta (hash), 2 history, 3 messages, 4 modifications,
// 5 recording segments (lists), 6 lease (`<nodeId>:<epoch>`, PX), 7 epoch (INCR), 8 the index (zset of
// session ids by updatedAt, for counting and the sweep).

/** The keys of one session, in the order every script takes them. */
export function sessionKeys(prefix: string, sessionId: string): string[] {
  // The hash tag keeps a session's keys in one slot, should the store ever run on Redis Cluster.
  const base = `${prefix}s:{${sessionId}}:`;
  return [`${base}meta`, `${base}hist`, `${base}msgs`, `${base}mods`, `${base}segs`, `${base}lease`, `${base}epoch`, `${prefix}index`];
}

// Shared tail of create and write: refresh the lease, renew every key's TTL, index the session.
const TOUCH_KEYS = `
local function touch(leaseValue, leaseMs, ttlMs, score, sessionId)
  redis.call('SET', KEYS[6], leaseValue, 'PX', leaseMs)
  for k = 1, 5 do redis.call('PEXPIRE', KEYS[k], ttlMs) end
  redis.call('PEXPIRE', KEYS[7], ttlMs)
  redis.call('ZADD', KEYS[8], score, sessionId)
end
`;

/**
 * create: ARGV 1 nodeId, 2 leaseMs, 3 ttlMs, 4 score (updatedAt ms), 5 sessionId, 6 meta pair count,
 * then the pairs, then for each list (history, messages, modifications, segments) its count and items.
 * Takes the lease with a new epoch; returns the epoch.
 */
export const CREATE_SCRIPT = `${TOUCH_KEYS}
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS session already exists') end
local epoch = redis.call('INCR', KEYS[7])
local i = 6
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for k = 2, 5 do
  local count = tonumber(ARGV[i]); i = i + 1
  for _ = 1, count do redis.call('RPUSH', KEYS[k], ARGV[i]); i = i + 1 end
end
touch(ARGV[1] .. ':' .. epoch, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return epoch
`;

/**
 * A fenced write: ARGV 1 epoch, 2 lease value, 3 leaseMs, 4 ttlMs, 5 updatedAt, 6 score, 7 op,
 * 8 sessionId, 9.. the op's arguments. Refused with FENCED when the session's epoch is no longer the
 * caller's (another node took it), so a stale owner can never write over the new one.
 */
export const WRITE_SCRIPT = `${TOUCH_KEYS}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('MISSING session is not in the store') end
local epoch = redis.call('GET', KEYS[7])
if epoch ~= ARGV[1] then return redis.error_reply('FENCED the epoch is ' .. tostring(epoch) .. ', not ' .. ARGV[1]) end
local op = ARGV[7]
if op == 'update' then
  local n = tonumber(ARGV[9])
  local i = 10
  for _ = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
  if ARGV[i] == '1' then
    redis.call('DEL', KEYS[5])
    for j = i + 1, #ARGV do redis.call('RPUSH', KEYS[5], ARGV[j]) end
  end
elseif op == 'appendMessage' then
  redis.call('RPUSH', KEYS[3], ARGV[9])
elseif op == 'finishRecording' then
  redis.call('HSET', KEYS[1], 'recording', 'null')
  redis.call('DEL', KEYS[5])
  redis.call('RPUSH', KEYS[3], ARGV[9])
elseif op == 'appendModification' then
  redis.call('RPUSH', KEYS[4], ARGV[9])
elseif op == 'appendRecordingSegment' then
  if redis.call('HGET', KEYS[1], 'recording') == 'null' then return redis.error_reply('NOTRECORDING session is not recording') end
  redis.call('RPUSH', KEYS[5], ARGV[9])
else
  return redis.error_reply('ERR unknown op ' .. op)
end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[5])
touch(ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[8])
return 1
`;

/** delete: ARGV 1 epoch, 2 sessionId. 0 when there is no such session; FENCED when another node holds it. */
export const DELETE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[8], ARGV[2])
  return 0
end
local epoch = redis.call('GET', KEYS[7])
if epoch ~= ARGV[1] then return redis.error_reply('FENCED the epoch is ' .. tostring(epoch) .. ', not ' .. ARGV[1]) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
redis.call('ZREM', KEYS[8], ARGV[2])
return 1
`;

/**
 * acquire: KEYS meta, lease, epoch; ARGV 1 nodeId, 2 leaseMs. Returns {1, epoch} when this node holds
 * the lease now (taken with a new epoch, or already its own), {0, lease} when another node holds it,
 * {-1, ''} when there is no such session.
 */
export const ACQUIRE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, ''} end
local lease = redis.call('GET', KEYS[2])
if lease then
  local owner, epoch = string.match(lease, '^(.*):(%d+)$')
  if owner ~= ARGV[1] then return {0, lease} end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {1, epoch}
end
local epoch = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return {1, tostring(epoch)}
`;

/** renew: KEYS lease, epoch; ARGV 1 epoch, 2 lease value, 3 leaseMs. 0 when another node took the session. */
export const RENEW_SCRIPT = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;

/** release: KEYS lease; ARGV 1 lease value. Deletes the lease only if it is still this node's. */
export const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
