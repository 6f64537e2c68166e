"""The Lua scripts `RedisStore` runs: each write is one script, so data and expiry change together."""

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from fastapi_sessions.stores._records import FORMAT_VERSION
from fastapi_sessions.stores.redis._protocol import RedisCommands

__all__ = [
    "CREATE",
    "DELETE",
    "DELETE_OWNED",
    "DELETE_USER",
    "GENERATION",
    "INDEX_ADD",
    "KEEP",
    "NEXT_GENERATION",
    "REPLACE",
    "SCRIPTS",
    "TAKE",
    "UPDATE",
    "Script",
]

# Lua 5.1's unpack() has a stack limit of a few thousand values: write fields 1000 arguments at a time.
# Redis checks maxmemory at a script's first write only (later ones pass, so a script is never cut in
# half): each script begins with a write that adds data (HSET, SADD), never with DEL.
#
# A user's index must outlive each of the user's sessions, and an update may push a session's expiry
# past the index's. So each write sets the index to expire twice the session's ttl from now, and
# records that deadline in the session (':x', server time in ms); an update that would outlive it
# returns the user ID, and the store then extends the index (a second command, once per ttl at most).
_LUA_HELPERS = f"""
local FORMAT = '{FORMAT_VERSION}'

local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function write_session(key, index, first)
  local ttl = tonumber(ARGV[1])
  if redis.call('EXISTS', key) == 1 then
    redis.call('DEL', key)
  end
  for i = first, #ARGV, 1000 do
    redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  if ARGV[3] == '1' then
    redis.call('HSET', key, ':v', 1, ':f', FORMAT, ':u', ARGV[2], ':x', string.format('%d', now_ms() + 2 * ttl))
  else
    redis.call('HSET', key, ':v', 1, ':f', FORMAT)
  end
  redis.call('PEXPIRE', key, ttl)
  if index then
    redis.call('SADD', index, ARGV[4])
    if redis.call('PTTL', index) < 2 * ttl then
      redis.call('PEXPIRE', index, 2 * ttl)
    end
  end
end
"""


class Script:
    """A Lua script run by its SHA1; a server that lacks it (restarted, flushed) gets the text once."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, client: RedisCommands, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL runs it on the node that holds the keys and caches it there for the next EVALSHA.
            return await client.eval(self.text, len(keys), *keys, *args)


# KEYS: the session hash[, the user's index]. ARGV: ttl ms, user ID, has user ('1'/'0'), index member,
# then field/value pairs.
CREATE = Script(_LUA_HELPERS + "write_session(KEYS[1], KEYS[2], 5)\nreturn 1\n")

# KEYS: the old hash, the new hash[, the old user's index][, the new user's index]. ARGV: as CREATE,
# then has old index ('1'/'0'), old member, then field/value pairs. Writes nothing if the old hash is gone.
REPLACE = Script(
    _LUA_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local index = 3
if ARGV[5] == '1' then index = 4 end
write_session(KEYS[2], KEYS[index], 7)
redis.call('DEL', KEYS[1])
if ARGV[5] == '1' then redis.call('SREM', KEYS[3], ARGV[6]) end
return 1
"""
)

# KEYS: the session hash. ARGV: ttl ms, expected version or '', number of removed names n, the n names,
# then field/value pairs. Returns the new version, or the new version and the user ID when the user's
# index must be extended; -1 if there is no session, or none this release can write to (not a hash, a
# version that is no integer, a newer format), -2 on a version mismatch.
UPDATE = Script(
    _LUA_HELPERS
    + """
local state = redis.pcall('HMGET', KEYS[1], ':v', ':u', ':x', ':f')
if state.err or not state[1] or not string.match(state[1], '^%-?%d+$') then return -1 end
if state[4] and state[4] ~= FORMAT then return -1 end
if ARGV[2] ~= '' and ARGV[2] ~= state[1] then return -2 end
local ttl = tonumber(ARGV[1])
local last_removed = 3 + tonumber(ARGV[3])
for i = last_removed + 1, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
for i = 4, last_removed, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, last_removed)))
end
redis.call('PEXPIRE', KEYS[1], ttl)
local version = redis.call('HINCRBY', KEYS[1], ':v', 1)
if state[2] then
  local now = now_ms()
  if now + ttl > (tonumber(state[3]) or 0) then
    redis.call('HSET', KEYS[1], ':x', string.format('%d', now + 2 * ttl))
    return {version, state[2]}
  end
end
return version
"""
)

# KEYS: the session hash, the user's index. ARGV: the index member. Returns whether the hash existed.
DELETE = Script(
    """
local existed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return existed
"""
)

# Adds a member to a user's index and makes the index live at least ttl ms: in Cluster, where the index
# lives in another slot than the session, and after an update that outlives the index. KEYS: the index.
# ARGV: ttl ms, member.
INDEX_ADD = Script(
    """
redis.call('SADD', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"""
)

# KEYS: the session hash, the user's index. ARGV: the index member. Deletes the hash only if it is in the
# index; returns whether it existed.
DELETE_OWNED = Script(
    """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
local existed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return existed
"""
)

# KEYS: the user's index. ARGV: the key prefix, the member to keep (or ''). Deletes the hash of every other
# member and drops it from the index, in one script, so no REPLACE runs in between. It names the hashes
# itself: a single server only, since in Cluster they live in other slots than the index. Deletions only,
# which Redis runs even at maxmemory.
DELETE_USER = Script(
    """
local deleted = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if member ~= ARGV[2] then
    deleted = deleted + redis.call('DEL', ARGV[1] .. '{' .. member .. '}')
    redis.call('SREM', KEYS[1], member)
  end
end
return deleted
"""
)

# In Cluster, where the revocation cannot be one script, each session of a user records in ':g' the
# user's revocation generation it was issued under, a regeneration hands it on, and one that finds the
# generation advanced meanwhile undoes itself (RedisStore explains why that is enough).

# KEYS: the user's generation. Returns it (0 before any revocation).
GENERATION = Script("return redis.call('GET', KEYS[1]) or 0\n")

# KEYS: the user's generation. Advances it; returns the new one.
NEXT_GENERATION = Script("return redis.call('INCR', KEYS[1])\n")

# KEYS: the session hash. Deletes it; returns the generation it records ('0' if none), nil if there was no hash.
TAKE = Script(
    """
local generation = redis.pcall('HGET', KEYS[1], ':g')
if redis.call('DEL', KEYS[1]) == 0 then return false end
if type(generation) ~= 'string' then return '0' end
return generation
"""
)

# KEYS: the session hash. ARGV: a generation. Records it in the session, if there is one.
KEEP = Script(
    """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.pcall('HSET', KEYS[1], ':g', ARGV[1]) end
return 1
"""
)

SCRIPTS = (
    CREATE,
    REPLACE,
    UPDATE,
    DELETE,
    INDEX_ADD,
    DELETE_OWNED,
    DELETE_USER,
    GENERATION,
    NEXT_GENERATION,
    TAKE,
    KEEP,
)
