-- analytics-forwarder: passes every Kompose analytics event on to an n8n
-- webhook as {"topic": <topic>, "event": <payload>}.
--
-- Settings, read from the environment when the rule loads:
--   N8N_WEBHOOK_URL  required. The production URL of an active n8n Webhook
--                    node set to POST, e.g.
--                    https://n8n.example.com/webhook/kompose-analytics.
--
-- A JSON payload is embedded byte for byte (json.raw), so numbers beyond
-- 2^53, empty arrays and key order reach n8n as published. Any other
-- payload is sent as a JSON string.

local WEBHOOK_URL = env("N8N_WEBHOOK_URL")

-- The webhook URL without its query string, which may hold a secret,
-- for logs and errors.
local WEBHOOK_NAME = WEBHOOK_URL:gsub("%?.*$", "")

-- JSON strings must be valid UTF-8; stray bytes become U+FFFD so that
-- the event still arrives, visibly damaged, instead of being refused.
local function valid_utf8(s)
  local parts, from = {}, 1
  while true do
    local ok, bad = utf8.len(s, from)
    if ok then
      parts[#parts + 1] = s:sub(from)
      return table.concat(parts)
    end
    parts[#parts + 1] = s:sub(from, bad - 1) .. "\u{FFFD}"
    from = bad + 1
  end
end

-- A JSON payload holding invalid UTF-8 cannot be embedded as it is
-- either, so it goes the string way too.
local function event_value(event, payload, topic)
  local utf8_ok = utf8.len(payload) ~= nil
  if event ~= nil and utf8_ok then
    return json.raw(payload)
  end
  log.info("payload on %s is %s; forwarding it as a string (%d bytes)",
    topic, event == nil and "not JSON" or "not valid UTF-8", #payload)
  if utf8_ok then
    return payload
  end
  return valid_utf8(payload)
end

on("kompose/analytics/#", function(event, msg)
  local body = {
    topic = msg.topic,
    event = event_value(event, msg.payload, msg.topic),
  }
  local res = http_post(WEBHOOK_URL, body)
  if not res.ok then
    error(string.format("POST %s failed: status %d%s", WEBHOOK_NAME,
      res.status, res.error and (", " .. res.error) or ""), 0)
  end
  log.debug("forwarded %s to %s: status %d", msg.topic, WEBHOOK_NAME,
    res.status)
end)
