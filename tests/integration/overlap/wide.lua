-- Posts each message it gets on o/#, naming itself.
local url = env("N8N_WEBHOOK_URL")
on("o/#", function(_, msg)
  local res = http_post(url, {rule = "wide", topic = msg.topic,
                              payload = msg.payload})
  if not res.ok then error("post failed: " .. res.status) end
end)
