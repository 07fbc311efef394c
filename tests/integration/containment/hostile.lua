-- A rule that misbehaves in every way a rule can: one handler per case,
-- on hostile/<case>. The containment test checks that each is aborted
-- and logged while the daemon and the witness rule go on.

local cases = {}

cases.busy_loop = function()
  while true do end
end

cases.recursion = function()
  local function deeper(n) return 1 + deeper(n + 1) end
  return deeper(1)
end

cases.huge_string = function()
  return string.rep("x", 2 ^ 40)
end

cases.growing_table = function()
  local t = {}
  local i = 0
  while true do
    i = i + 1
    t[i] = string.rep("y", 64) .. i
  end
end

-- luacheck: push ignore 113
cases.io_open = function() return io.open("/etc/passwd") end
cases.os_execute = function() return os.execute("true") end
cases.require = function() return require("socket") end
cases.package_loadlib = function() return package.loadlib("libc.so.6", "*") end
cases.debug_registry = function() return debug.getregistry() end
-- luacheck: pop

cases.binary_chunk = function()
  local chunk = "\27Lua\84\0\25\147\13\10\26\10"
  return assert(load(chunk, "=chunk", "b"))
end

cases.string_metatable = function()
  getmetatable("").__index = function() return "owned" end
end

cases.own_coroutine = function()
  -- A coroutine of the rule's own counts against the handler too.
  local spin = coroutine.wrap(function() while true do end end)
  pcall(spin)
  log.info("escaped the instruction limit")
end

cases.error = function()
  error("deliberate failure")
end

cases.never_finishes = function()
  coroutine.yield()
end

cases.caught_busy_loop = function()
  -- The limit cannot be swallowed by the rule's own pcall.
  pcall(function() while true do end end)
  log.info("escaped the instruction limit")
end

for name, fn in pairs(cases) do
  on("hostile/" .. name, fn)
end

timer.every(0.2, function()
  error("tick failure")
end)
