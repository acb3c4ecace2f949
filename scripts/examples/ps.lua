-- ps.lua: every task in the kernel's task list (init_task first), as pid and comm.
-- usage: xascript scripts/examples/ps.lua --file DUMP   (profile flags optional)
local linux = require("linux")
for _, t in ipairs(linux.tasks()) do
  print(t.pid, t.comm)
end
