#!lua name=herald_presence_v1
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function table_of(args)
  return {prefix = args[1], t = args[1] .. '{presence}:', cluster = args[2] == 'cluster'}
end
local function notice(tb, channel, kind, user, info)
  if tb.cluster then
    redis.call('PUBLISH', tb.t .. 'events', cmsgpack.pack({2, kind, user, info, channel}))
  else
    redis.call('PUBLISH', tb.prefix .. 'ch:{' .. channel .. '}', cmsgpack.pack({2, kind, user, info}))
  end
end
local function hook(tb, event)
  if redis.call('EXISTS', tb.t .. 'hooks') == 1 then
    redis.call('XADD', tb.t .. 'webhooks', 'MAXLEN', '~', '100000', '*', 'e', event)
  end
end
local function leave(tb, node, channel, user)
  if redis.call('SREM', tb.t .. 'node:' .. node, channel .. '\n' .. user) == 0 then
    return 0
  end
  local nkey = tb.t .. 'n:' .. channel
  if redis.call('HINCRBY', nkey, user, -1) > 0 then return 0 end
  redis.call('HDEL', nkey, user)
  local mkey = tb.t .. 'm:' .. channel
  local info = redis.call('HGET', mkey, user) or 'null'
  redis.call('HDEL', mkey, user)
  notice(tb, channel, 'leave', user, info)
  hook(tb, cjson.encode({name = 'member_removed', channel = channel, user_id = user}))
  return 1
end
local function vacate(tb, node, channel)
  if redis.call('SREM', tb.t .. 'occ:' .. node, channel) == 0 then return 0 end
  local okey = tb.t .. 'occ'
  if redis.call('HINCRBY', okey, channel, -1) > 0 then return 0 end
  redis.call('HDEL', okey, channel)
  hook(tb, cjson.encode({name = 'channel_vacated', channel = channel}))
  return 1
end
local function gone(tb, node)
  local key = tb.t .. 'node:' .. node
  local left = 0
  for _, entry in ipairs(redis.call('SMEMBERS', key)) do
    local at = string.find(entry, '\n', 1, true)
    left = left + leave(tb, node, string.sub(entry, 1, at - 1), string.sub(entry, at + 1))
  end
  redis.call('DEL', key)
  local okey = tb.t .. 'occ:' .. node
  for _, channel in ipairs(redis.call('SMEMBERS', okey)) do vacate(tb, node, channel) end
  redis.call('DEL', okey, tb.t .. 'subs:' .. node)
  redis.call('ZREM', tb.t .. 'nodes', node)
  return left
end
-- args: prefix, mode, node, channel, user, info. 1 joined, 0 already a member, -1 unknown node.
redis.register_function('herald_presence_join', function(keys, args)
  local tb = table_of(args)
  local node, channel, user, info = args[3], args[4], args[5], args[6]
  if not redis.call('ZSCORE', tb.t .. 'nodes', node) then return -1 end
  if redis.call('SADD', tb.t .. 'node:' .. node, channel .. '\n' .. user) == 0 then
    return 0
  end
  if redis.call('HINCRBY', tb.t .. 'n:' .. channel, user, 1) > 1 then return 0 end
  redis.call('HSET', tb.t .. 'm:' .. channel, user, info)
  notice(tb, channel, 'join', user, info)
  hook(tb, cjson.encode({name = 'member_added', channel = channel, user_id = user}))
  return 1
end)
-- args: prefix, mode, node, channel, user. 1 left, 0 still a member elsewhere or not here.
redis.register_function('herald_presence_leave', function(keys, args)
  return leave(table_of(args), args[3], args[4], args[5])
end)
-- args: prefix, mode, node, lease ms, and 'hooks' when the node delivers webhooks. 1 when the
-- node was known, 0 when it must report again.
redis.register_function('herald_presence_heartbeat', function(keys, args)
  local tb = table_of(args)
  local nodes = tb.t .. 'nodes'
  local known = redis.call('ZSCORE', nodes, args[3])
  redis.call('ZADD', nodes, now_ms() + tonumber(args[4]), args[3])
  if args[5] == 'hooks' then redis.call('SET', tb.t .. 'hooks', '1', 'PX', args[4]) end
  if known then return 1 end
  return 0
end)
-- args: prefix, mode, node. The node left for good: its members leave now. Returns the leaves.
redis.register_function('herald_presence_gone', function(keys, args)
  return gone(table_of(args), args[3])
end)
-- args: prefix, mode, node, channel. The node has subscribers in the channel now. 1 when the
-- channel became occupied, 0 when it already was (or the node had said so), -1 unknown node.
redis.register_function('herald_occupancy_enter', function(keys, args)
  local tb = table_of(args)
  local node, channel = args[3], args[4]
  if not redis.call('ZSCORE', tb.t .. 'nodes', node) then return -1 end
  if redis.call('SADD', tb.t .. 'occ:' .. node, channel) == 0 then return 0 end
  if redis.call('HINCRBY', tb.t .. 'occ', channel, 1) > 1 then return 0 end
  hook(tb, cjson.encode({name = 'channel_occupied', channel = channel}))
  return 1
end)
-- args: prefix, mode, node, channel. The node's last subscriber left. 1 when the channel was
-- vacated.
redis.register_function('herald_occupancy_leave', function(keys, args)
  return vacate(table_of(args), args[3], args[4])
end)
-- args: prefix, mode, node, then pairs of channel and subscription count (0 removes). 1, or -1
-- when the node is unknown.
redis.register_function('herald_subscriptions_set', function(keys, args)
  local tb = table_of(args)
  local node = args[3]
  if not redis.call('ZSCORE', tb.t .. 'nodes', node) then return -1 end
  local key = tb.t .. 'subs:' .. node
  for i = 4, #args - 1, 2 do
    if args[i + 1] == '0' then
      redis.call('HDEL', key, args[i])
    else
      redis.call('HSET', key, args[i], args[i + 1])
    end
  end
  return 1
end)
-- args: prefix, mode, channels. Each channel's subscriptions, summed over the live nodes.
redis.register_function('herald_subscriptions_count', function(keys, args)
  local tb = table_of(args)
  local counts = {}
  for i = 3, #args do counts[i - 2] = 0 end
  if #args < 3 then return counts end
  local live = redis.call('ZRANGE', tb.t .. 'nodes', now_ms(), '+inf', 'BYSCORE')
  for _, node in ipairs(live) do
    local got = redis.call('HMGET', tb.t .. 'subs:' .. node, unpack(args, 3))
    for i, v in ipairs(got) do
      if v then counts[i] = counts[i] + tonumber(v) end
    end
  end
  return counts
end)
-- args: prefix, mode, event (JSON text). Queues a webhook event while some node delivers them.
redis.register_function('herald_webhook_add', function(keys, args)
  hook(table_of(args), args[3])
  return 1
end)
-- args: prefix, mode. Nodes whose lease ran out are gone. Returns {nodes, leaves}.
redis.register_function('herald_presence_expire', function(keys, args)
  local tb = table_of(args)
  local dead = redis.call('ZRANGE', tb.t .. 'nodes', '-inf', now_ms(), 'BYSCORE')
  local left = 0
  for _, node in ipairs(dead) do left = left + gone(tb, node) end
  return {#dead, left}
end)
