-- Proves the daemon still works: forwards each witness/<n> event.
local url = env("N8N_WEBHOOK_URL")

on("witness/+", function(_, msg)
  assert(("x"):rep(3) == "xxx", "string library damaged")
  local res = http_post(url, {seen = msg.topic})
  if not res.ok then error("witness post failed: " .. res.status) end
end)
