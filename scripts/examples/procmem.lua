-- procmem.lua: a process's command line and environment, as the guest's
-- /proc/PID/cmdline and /proc/PID/environ give them, read from the
-- process's own memory (mm->arg_start..arg_end, env_start..env_end)
-- through its page tables: one record per string (kind "arg" or "env", n
-- counts from 0). The process sets those bounds itself, so at most
-- linux.MAX_PROC_STRINGS (128 KiB) of each are read; a record with
-- truncated=true follows the last string when more was there.
-- usage: xascript scripts/examples/procmem.lua --file DUMP [--json] -- PID
local linux = require("linux")
local pid = tonumber(arg[1]) or error("usage: procmem.lua ... -- PID", 0)
local p = assert(process(pid))
for _, kind in ipairs({ "arg", "env" }) do
  local strs, truncated = assert(linux.proc_strings(p, kind))
  for i, s in ipairs(strs) do
    emit({ pid = p.pid, comm = p.comm, kind = kind, n = i - 1, value = s }, { "pid", "comm", "kind", "n", "value" })
  end
  if truncated then emit({ pid = p.pid, comm = p.comm, kind = kind, truncated = true }, { "pid", "comm", "kind" }) end
end
