/**
 * The Lua script behind RedisStore: the three algorithms of limit/algorithms.ts, line for line, run
 * atomically by Redis over every rule of one request. Nothing is written unless every rule allows
 * the request, so a refusal by one rule takes nothing from the others.
 *
 * KEYS[i]: one hash (fields a, b, c) per rule. ARGV[1]: cost; ARGV[2]: now in ms, or '' to use the
 * Redis server's clock (so that every process shares one time); then per rule: algorithm
 * (1 token bucket, 2 sliding window, 3 fixed window), limit, windowMs, burst.
 * Returns per rule: allowed (1/0), remaining, resetMs, retryAfterMs (-1 for never).
 */
export const RATE_LIMIT_SCRIPT = `
local cost = tonumber(ARGV[1])
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[2])
end
local EPS = 1e-9
local function ceilms(x) return math.ceil(x - 1e-6) end
local out = {}
local writes = {}
local all = true
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 4
  local algo = tonumber(ARGV[base + 1])
  local limit = tonumber(ARGV[base + 2])
  local window = tonumber(ARGV[base + 3])
  local burst = tonumber(ARGV[base + 4])
  local h = redis.call('HMGET', KEYS[i], 'a', 'b', 'c')
  local a, b, c = tonumber(h[1]), tonumber(h[2]), tonumber(h[3]) or 0
  local allowed, remaining, reset, retry, ttl
  if algo == 1 then
    local rate = limit / window
    if a == nil then a = burst; b = now end
    local tokens = math.min(burst, a + math.max(0, now - b) * rate)
    b = math.max(b, now)
    allowed = tokens + EPS >= cost
    local after = tokens
    if allowed then after = tokens - cost end
    a = after
    remaining = math.floor(after)
    reset = math.max(0, ceilms((burst - after) / rate))
    if allowed then retry = 0 elseif cost > burst then retry = -1 else retry = ceilms((cost - tokens) / rate) end
    ttl = math.ceil(burst / rate) + 1000
  elseif algo == 3 then
    local start = math.floor(now / window) * window
    if a == nil or start > a then a = start; b = 0 end
    allowed = b + cost <= limit
    if allowed then b = b + cost end
    remaining = math.max(0, math.floor(limit - b))
    local r = a + window - now
    if b == 0 then reset = 0 else reset = r end
    if allowed then retry = 0 elseif cost > limit then retry = -1 else retry = r end
    ttl = window + 1000
  else
    local start = math.floor(now / window) * window
    if a == nil then a = start; b = 0; c = 0 end
    if start > a then
      if start - a == window then c = b else c = 0 end
      b = 0
      a = start
    end
    local left = window - (now - a)
    local estimate = c * left / window + b
    allowed = estimate + cost <= limit + EPS
    local before = b
    if allowed then b = b + cost end
    local used = c * left / window + b
    remaining = math.max(0, math.floor(limit - used))
    if b > 0 then reset = left + window elseif c > 0 then reset = left else reset = 0 end
    if allowed then
      retry = 0
    elseif cost > limit then
      retry = -1
    else
      local room = limit - cost - before
      if room >= 0 and c > 0 then
        local t = left - room * window / c
        if t <= left then retry = math.max(0, ceilms(t)) end
      end
      if retry == nil then
        local tn = 0
        if before > 0 then tn = window - (limit - cost) * window / before end
        retry = ceilms(left + math.max(0, tn))
      end
    end
    ttl = 2 * window + 1000
  end
  if not allowed then all = false end
  writes[i] = { a, b, c, ttl }
  out[#out + 1] = allowed and 1 or 0
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
end
if all then
  for i = 1, #KEYS do
    local w = writes[i]
    redis.call('HSET', KEYS[i], 'a', tostring(w[1]), 'b', tostring(w[2]), 'c', tostring(w[3]))
    redis.call('PEXPIRE', KEYS[i], w[4])
  end
end
return out
`;
