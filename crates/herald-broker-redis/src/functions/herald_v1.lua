#!lua name=herald_v1
-- Keys: the channel's sequence key (`<prefix>seq:{<channel>}`), its pub/sub channel, and for a
-- cache channel where its last publication stays. The epoch (`epoch:{..}`) and history
-- (`hist:{..}`) keys are named after the sequence key: same hash tag, same slot.
-- Arguments: data, id, offset TTL (s), traceparent, event, exclude, user, history size,
-- history TTL (ms). Only data is needed; history defaults to 100 publications for 2 minutes.
local function related(keys, kind)
  return (string.gsub(keys[1], 'seq:{', kind .. ':{', 1))
end
local function sequence(keys, args)
  local offset = redis.call('INCR', keys[1])
  local ttl = tonumber(args[3] or '') or 0
  if ttl > 0 then redis.call('EXPIRE', keys[1], ttl) end
  local t = redis.call('TIME')
  local at = tonumber(t[1]) * 1000000 + tonumber(t[2])
  -- A sequence that starts (again) starts a new epoch.
  local ekey = related(keys, 'epoch')
  local epoch = redis.call('GET', ekey)
  if offset == 1 or not epoch then
    epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
    redis.call('SET', ekey, epoch)
  end
  if ttl > 0 then redis.call('EXPIRE', ekey, ttl) end
  local message = {1, offset, args[1], args[2] or '', at}
  for i = 4, 7 do message[i + 2] = args[i] or '' end
  message[10] = epoch
  return offset, epoch, at, cmsgpack.pack(message)
end
local function keep(keys, message)
  if keys[3] then redis.call('SET', keys[3], message, 'EX', 1800) end
end
-- The history: a stream of the channel's envelopes, entry `<offset>-0`, capped in length
-- (approximately) and in time (the key's TTL; readers skip older entries).
local function remember(keys, args, offset, at, message)
  local size = tonumber(args[8] or '') or 100
  local ttl = tonumber(args[9] or '') or 120000
  local hkey = related(keys, 'hist')
  if size <= 0 or ttl <= 0 then return end
  if offset == 1 then redis.call('DEL', hkey) end
  local added = redis.pcall('XADD', hkey, 'MAXLEN', '~', size, offset .. '-0', 'm', message, 't', at)
  if type(added) == 'table' and added.err then
    -- Entries from a sequence that went backwards: that history is not this one's.
    redis.call('DEL', hkey)
    redis.call('XADD', hkey, 'MAXLEN', '~', size, offset .. '-0', 'm', message, 't', at)
  end
  redis.call('PEXPIRE', hkey, ttl)
end
local function publish(keys, args, command)
  local offset, epoch, at, message = sequence(keys, args)
  keep(keys, message)
  remember(keys, args, offset, at, message)
  redis.call(command, keys[2], message)
  return offset, epoch
end
redis.register_function('herald_publish', function(keys, args)
  return (publish(keys, args, 'PUBLISH'))
end)
redis.register_function('herald_spublish', function(keys, args)
  return (publish(keys, args, 'SPUBLISH'))
end)
-- As above, answering with the position: {offset, epoch}.
redis.register_function('herald_publish_position', function(keys, args)
  return {publish(keys, args, 'PUBLISH')}
end)
redis.register_function('herald_spublish_position', function(keys, args)
  return {publish(keys, args, 'SPUBLISH')}
end)
-- Key: the sequence key. Argument: an epoch in which a node saw the sequence go back (a
-- failover that lost writes). Starts a new epoch, and drops the history, when it is still the
-- channel's; answers the new epoch, or nil.
redis.register_function('herald_new_epoch', function(keys, args)
  local ekey = related(keys, 'epoch')
  if redis.call('GET', ekey) ~= args[1] then return nil end
  local t = redis.call('TIME')
  local epoch = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  redis.call('SET', ekey, epoch, 'KEEPTTL')
  redis.call('DEL', related(keys, 'hist'))
  return epoch
end)
-- Key: the sequence key. Arguments: since (an offset, or '' for none), limit, reverse ('1'
-- for newest first), max age (ms), window (only the latest this many count as kept: the
-- stream is trimmed approximately). Answers {offset, epoch, envelope...}: where the sequence
-- stands, and up to `limit` kept envelopes after `since` no older than the max age.
redis.register_function{
  function_name = 'herald_history',
  flags = {'no-writes'},
  callback = function(keys, args)
    local offset = tonumber(redis.call('GET', keys[1]) or '0') or 0
    local epoch = redis.call('GET', related(keys, 'epoch')) or ''
    local out = {offset, epoch}
    local limit = tonumber(args[2]) or 0
    if limit <= 0 then return out end
    local t = redis.call('TIME')
    local oldest = tonumber(t[1]) * 1000000 + tonumber(t[2]) - (tonumber(args[4]) or 0) * 1000
    local hkey = related(keys, 'hist')
    local fresh = function(entry) return tonumber(entry[2][4]) >= oldest end
    local since = tonumber(args[1])
    local window = tonumber(args[5] or '') or 0
    if window > 0 and offset - window > (since or 0) then since = offset - window end
    if args[3] == '1' then
      local bound = '-'
      if since then bound = '(' .. since .. '-0' end
      -- Newest first: the first entry too old ends the read.
      for _, entry in ipairs(redis.call('XREVRANGE', hkey, '+', bound, 'COUNT', limit)) do
        if not fresh(entry) then break end
        out[#out + 1] = entry[2][2]
      end
      return out
    end
    local start = '-'
    if since then start = '(' .. since .. '-0' end
    -- Oldest first: entries too old come first, and are skipped a chunk at a time.
    while #out - 2 < limit do
      local chunk = redis.call('XRANGE', hkey, start, '+', 'COUNT', limit - (#out - 2))
      if #chunk == 0 then break end
      for _, entry in ipairs(chunk) do
        if fresh(entry) then out[#out + 1] = entry[2][2] end
      end
      start = '(' .. chunk[#chunk][1]
    end
    return out
  end,
}
