-- modwatch.lua [interval [rounds]]: report kernel modules as they are
-- loaded and unloaded, by polling the module list every `interval` seconds
-- (default 1) for `rounds` rounds (default: until interrupted or the guest
-- goes away). The first round lists what is loaded. Each round reads the
-- list with the guest paused, so it is a consistent snapshot. One record per
-- change: event=loaded or event=unloaded, and the module's name.
local linux = require("linux")
local interval = tonumber(arg[1]) or 1
local rounds = tonumber(arg[2]) or math.huge

local seen, round = {}, 0
while round < rounds do
  round = round + 1
  local now_loaded = {}
  for _, m in ipairs(with_paused(linux.modules)) do
    now_loaded[m.name] = true
    if not seen[m.name] then emit({ event = "loaded", module = m.name }, { "event" }) end
  end
  for name in pairs(seen) do
    if not now_loaded[name] then emit({ event = "unloaded", module = name }, { "event" }) end
  end
  seen = now_loaded
  if round < rounds then sleep(interval) end
end
