"""The Lua scripts behind the store's atomic writes (each one runs as a single, isolated step inside Redis).

Every write script takes an ``op`` token, a random id the client makes once per call and stores in the task hash.
The client retries a call whose reply was lost (a connection reset after Redis had applied it); when the hash
already carries that token the script answers as if it had just succeeded instead of failing its guard, so a retry
of a successful call never reports a failure and never applies twice.
"""

from __future__ import annotations

from aicut.store.keys import STATES

# HSET key from a JSON object whose values are all strings (the codec guarantees it).
_HSET_JSON = """
local function hset_json(key, json)
  local flat = {}
  for k, v in pairs(cjson.decode(json)) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
  end
  if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
end
"""

# KEYS: task, ready, tasks, state:QUEUED, events, counters
# ARGV: id, op, now_ms, created_ms, maxlen, attempt, origin, the whole record as a JSON object of strings (op included),
#       ready-at ms (the ready queue's score)
# (One JSON argument instead of 40 field/value arguments: packing arguments is most of the client's cost.)
CREATE = _HSET_JSON + """
local h = KEYS[1]
if redis.call('EXISTS', h) == 1 then
  if redis.call('HGET', h, 'op') == ARGV[2] then return 1 end
  return 0
end
hset_json(h, ARGV[8])
redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*',
  'kind', 'task', 'id', ARGV[1], 'attempt', ARGV[6], 'from', '', 'to', 'QUEUED', 'worker', '',
  'event', 'created', 'origin', ARGV[7], 'ts', ARGV[3])
redis.call('HINCRBY', KEYS[6], 'created', 1)
redis.call('HINCRBY', KEYS[6], 'to:QUEUED', 1)
return 1
"""

# The per-state index keys follow the four fixed keys, in STATES order.
_STATE_INDEX = ", ".join(f"{s.value} = {5 + i}" for i, s in enumerate(STATES))

# KEYS: task, ready, events, counters, state:<S> for S in STATES
# ARGV: 1 id, 2 attempt, 3 op, 4 now_ms, 5 to, 6 new_attempt or '', 7 ready_at_ms or '', 8 event text, 9 maxlen,
#       10 allowed from-states joined by ',', 11 '1' to return the record or '0' to return 1,
#       12 the fields to set as a JSON object of strings
# Returns the updated hash as a flat list (or 1), or nil when the guard fails. Bulk callers skip the record because
# parsing 40 strings per reply is most of a pipelined transition's client-side cost.
TRANSITION = (
    _HSET_JSON
    + """
local h = KEYS[1]
local cur = redis.call('HMGET', h, 'state', 'attempt', 'op', 'created_ms')
local state, attempt = cur[1], cur[2]
if not state then return false end
local function reply()
  if ARGV[11] == '1' then return redis.call('HGETALL', h) end
  return 1
end
if cur[3] == ARGV[3] then return reply() end
if tonumber(attempt) ~= tonumber(ARGV[2]) then return false end
local allowed = false
for s in string.gmatch(ARGV[10], '[^,]+') do
  if s == state then allowed = true; break end
end
if not allowed then return false end
local index = {"""
    + _STATE_INDEX
    + """}
local id, now, to = ARGV[1], ARGV[4], ARGV[5]
local new_attempt = attempt
if ARGV[6] ~= '' then new_attempt = ARGV[6] end
redis.call('HSET', h, 'state', to, 'attempt', new_attempt, 'updated_ms', now, 'op', ARGV[3])
hset_json(h, ARGV[12])
local created = cur[4]
if not created or created == '' or created == '0' then created = now end
if index[state] then redis.call('ZREM', KEYS[index[state]], id) end
redis.call('ZADD', KEYS[index[to]], created, id)
if to == 'QUEUED' then
  local at = ARGV[7]
  if at == '' then at = now end
  redis.call('ZADD', KEYS[2], at, id)
else
  redis.call('ZREM', KEYS[2], id)
end
local worker = redis.call('HGET', h, 'worker') or ''
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*',
  'kind', 'task', 'id', id, 'attempt', new_attempt, 'prev_attempt', attempt, 'from', state, 'to', to,
  'worker', worker, 'event', ARGV[8], 'ts', now)
redis.call('HINCRBY', KEYS[4], 'to:' .. to, 1)
return reply()
"""
)

# KEYS: task, events
# ARGV: id, attempt, stage, percent, now_ms, maxlen
# Only RUNNING tasks of the given attempt take progress. A stream entry is written only when the stage changes
# (a handful per task), so the dashboard can follow stages without one entry per percent.
PROGRESS = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'stage')
if cur[1] ~= 'RUNNING' or tonumber(cur[2]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'stage', ARGV[3], 'percent', ARGV[4], 'updated_ms', ARGV[5])
if cur[3] ~= ARGV[3] then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
    'kind', 'progress', 'id', ARGV[1], 'attempt', cur[2], 'stage', ARGV[3], 'percent', ARGV[4], 'ts', ARGV[5])
end
return 1
"""
