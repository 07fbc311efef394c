-- bench-marker: tells the benchmark's HTTP target that every event
-- published before the marker has been handled, and how many were
-- counted. The load generator publishes the marker on kompose/bench/done
-- after its events; the broker keeps one publisher's order and the
-- daemon starts handlers in arrival order, so the marker's handler runs
-- after every counting handler.
--
-- Settings:
--   BENCH_TARGET_URL   required. Where the marker is posted.
--   BENCH_COUNT_MODE   "pairs": sum the security-monitor counters of the
--                      load generator's email/ip pairs; "key": read the
--                      counter bench-curve. Either way the counters are
--                      reset, so that the next run starts from zero.

local URL = env("BENCH_TARGET_URL")
local MODE = env("BENCH_COUNT_MODE", "pairs")

local function pair_key(i)
  return string.format("security-monitor:user%d@example.com|10.0.%d.%d",
    i, i // 256 % 256, i % 256)
end

local function counted(data)
  local total = 0
  if MODE == "key" then
    total = counter.get("bench-curve")
    counter.reset("bench-curve")
    return total
  end
  for i = 0, (data.pairs or 0) - 1 do
    local key = pair_key(i)
    total = total + counter.get(key, 3600)
    counter.reset(key)
  end
  return total
end

on("kompose/bench/done", function(event)
  local data = type(event) == "table" and event.data or {}
  local res = http_post(URL, {
    seq = data.seq,
    t_ns = data.t_ns,
    total = counted(data),
  })
  if not res.ok then
    error("marker POST failed: status " .. res.status, 0)
  end
end)
