-- ps.lua: every task in the kernel's task list (init_task first), one record
-- per task: pid and comm.
-- usage: xascript scripts/examples/ps.lua --file DUMP [--json]   (profile flags optional)
local linux = require("linux")
for _, t in ipairs(linux.tasks()) do
  emit({ pid = t.pid, comm = t.comm }, { "pid", "comm" })
end
