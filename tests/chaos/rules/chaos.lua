-- Forwards each numbered chaos event to the target; a failure raises,
-- so an event whose retries run out would become a dead letter.
local url = env("CHAOS_TARGET")

on("chaos/events", function(event)
  local res = http_post(url, {seq = event.seq})
  if not res.ok then
    error(string.format("target answered %d %s", res.status,
      res.error or ""))
  end
end)
