#!lua name=herald_v1
local function sequence(keys, args)
  local offset = redis.call('INCR', keys[1])
  local ttl = tonumber(args[3] or '') or 0
  if ttl > 0 then redis.call('EXPIRE', keys[1], ttl) end
  local t = redis.call('TIME')
  local at = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local message = {1, offset, args[1], args[2] or '', at}
  -- The optional arguments 4 to 7 go in as far as the last one given.
  local last = 3
  for i = 4, 7 do
    if args[i] and args[i] ~= '' then last = i end
  end
  for i = 4, last do message[i + 2] = args[i] or '' end
  return offset, cmsgpack.pack(message)
end
local function keep(keys, message)
  if keys[3] then redis.call('SET', keys[3], message, 'EX', 1800) end
end
redis.register_function('herald_publish', function(keys, args)
  local offset, message = sequence(keys, args)
  keep(keys, message)
  redis.call('PUBLISH', keys[2], message)
  return offset
end)
redis.register_function('herald_spublish', function(keys, args)
  local offset, message = sequence(keys, args)
  keep(keys, message)
  redis.call('SPUBLISH', keys[2], message)
  return offset
end)
