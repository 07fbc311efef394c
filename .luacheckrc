-- luacheck settings for the shipped rules (rules/*.lua).
--
-- Rules run in a sandbox: the base library without dofile and loadfile,
-- plus string, table, math, utf8 and coroutine, and the mqttrules API.
-- Listing exactly these catches a rule that reaches for io, os or require,
-- which would only fail once deployed.

std = "mqttrules"

stds.mqttrules = {
  read_globals = {
    -- Lua 5.4 base library as the sandbox keeps it.
    "_G", "_VERSION", "assert", "collectgarbage", "error", "getmetatable",
    "ipairs", "load", "next", "pairs", "pcall", "print", "rawequal",
    "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber",
    "tostring", "type", "xpcall", "warn",
    "coroutine", "math", "string", "table", "utf8",

    -- The mqttrules API (docs: rules-api.md); a rule must not replace it.
    "on", "http_post", "http_request", "publish", "emit", "counter",
    "timer", "env", "json", "log", "now",
  },
}

max_line_length = 80
