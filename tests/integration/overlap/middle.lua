-- Posts each message it gets on o/+/c, naming itself.
local url = env("N8N_WEBHOOK_URL")
on("o/+/c", function(_, msg)
  local res = http_post(url, {rule = "middle", topic = msg.topic,
                              payload = msg.payload})
  if not res.ok then error("post failed: " .. res.status) end
end)
