-- security-monitor: counts failed logins per email and IP address and,
-- when one pair fails too often within a window, sends a Gotify message
-- and emits kompose/system/alert/triggered.
--
-- Settings, read from the environment when the rule loads:
--   GOTIFY_URL          required. Base URL of the Gotify server, e.g.
--                       https://push.example.com (a trailing / is ignored).
--   GOTIFY_TOKEN        required. An application token, sent in the
--                       X-Gotify-Key header (a ?token= query would end up
--                       in access logs). It is never logged.
--   SECURITY_THRESHOLD  default 3. Failures of one email and IP within the
--                       window that raise an alert; the count then starts
--                       again from zero.
--   SECURITY_WINDOW     default 3600. Length of the sliding window, in
--                       seconds.
--   SECURITY_PRIORITY   default 8. Gotify priority of the message, clamped
--                       to 0..10 (8-10 is what Gotify clients show as high).

local TOPIC = "kompose/vault/security/failed"
local ALERT_TOPIC = "kompose/system/alert/triggered"

-- Returns the environment variable name as a whole number of at least
-- min; a typo would otherwise silently disable the alerts.
local function whole_number(name, default, min)
  local text = env(name, tostring(default))
  local n = math.tointeger(tonumber(text))
  if not n or (min and n < min) then
    error(string.format("%s must be a whole number%s, not \"%s\"", name,
      min and (" >= " .. min) or "", text), 0)
  end
  return n
end

local GOTIFY_URL = env("GOTIFY_URL"):gsub("/+$", "") .. "/message"
local TOKEN = env("GOTIFY_TOKEN")
local THRESHOLD = whole_number("SECURITY_THRESHOLD", 3, 1)
local WINDOW = whole_number("SECURITY_WINDOW", 3600, 1)
local PRIORITY = math.max(0,
  math.min(10, whole_number("SECURITY_PRIORITY", 8)))

local HEADERS = {["X-Gotify-Key"] = TOKEN}

-- "1 hour", "15 minutes", "90 seconds": the message is read by people.
local function count_of(n, noun)
  return string.format("%d %s%s", n, noun, n == 1 and "" or "s")
end

local function duration(seconds)
  if seconds % 3600 == 0 then
    return count_of(seconds // 3600, "hour")
  elseif seconds % 60 == 0 then
    return count_of(seconds // 60, "minute")
  end
  return count_of(seconds, "second")
end

local function notify(alert)
  local text = string.format("%s for %s from %s within %s",
    count_of(alert.count, "failed login"), alert.email, alert.ip_address,
    duration(alert.window_seconds))
  if alert.reason then
    text = text .. " (last reason: " .. alert.reason .. ")"
  end
  local res = http_post(GOTIFY_URL, {
    title = "Repeated failed logins: " .. alert.email,
    message = text,
    priority = PRIORITY,
  }, {headers = HEADERS})
  if not res.ok then
    error(string.format("gotify POST /message failed: status %d%s",
      res.status, res.error and (", " .. res.error) or ""), 0)
  end
  log.info("alerted gotify: %s from %s, status %d", alert.email,
    alert.ip_address, res.status)
end

local function raise_alert(data, count)
  local alert = {
    type = "failed_logins",
    email = data.email,
    ip_address = data.ip_address,
    count = count,
    threshold = THRESHOLD,
    window_seconds = WINDOW,
    reason = type(data.reason) == "string" and data.reason or nil,
  }
  -- Emitted first: subscribers on the broker should hear of the alert
  -- even while Gotify is down or slow.
  emit(ALERT_TOPIC, alert)
  notify(alert)
end

-- Returns the event's data table, or nil and why it cannot be counted.
local function failure_data(event)
  if event == nil then
    return nil, "payload is not JSON"
  end
  local data = type(event) == "table" and event.data
  if type(data) ~= "table" then
    return nil, "event has no data object"
  end
  if type(data.email) ~= "string" or data.email == ""
      or type(data.ip_address) ~= "string" or data.ip_address == "" then
    return nil, "data.email and data.ip_address must be non-empty strings"
  end
  return data
end

on(TOPIC, function(event)
  local data, why = failure_data(event)
  if not data then
    log.warn("skipped failed login: %s", why)
    return
  end

  local key = "security-monitor:" .. data.email .. "|" .. data.ip_address
  local count = counter.incr(key, 1, WINDOW)
  if count < THRESHOLD then
    log.debug("failed login %d of %d for %s from %s", count, THRESHOLD,
      data.email, data.ip_address)
    return
  end
  counter.reset(key)
  raise_alert(data, count)
end)
