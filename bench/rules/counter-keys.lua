-- counter-keys: makes live counter keys for the memory figure. Each
-- message on kompose/bench/keys asks for the keys data.from to
-- data.to - 1, shaped like security-monitor's, each incremented once
-- with a one-hour window; then the batch is reported to the target.
--
-- Settings:
--   BENCH_TARGET_URL   required. Where each finished batch is posted.

local URL = env("BENCH_TARGET_URL")

local function key(i)
  return string.format("bench-keys:user%d@example.com|10.%d.%d.%d", i,
    i // 65536 % 256, i // 256 % 256, i % 256)
end

on("kompose/bench/keys", function(event)
  local data = event.data
  for i = data.from, data.to - 1 do
    counter.incr(key(i), 1, 3600)
  end
  local res = http_post(URL, {
    seq = data.seq,
    t_ns = data.t_ns,
    total = data.to - data.from,
  })
  if not res.ok then
    error("batch POST failed: status " .. res.status, 0)
  end
end)
