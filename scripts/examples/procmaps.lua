-- procmaps.lua: a process's memory mappings, as the guest's /proc/PID/maps
-- lists them (start, end, permissions, file offset, path), read through the
-- process's own page tables from outside the guest.
-- usage: xascript scripts/examples/procmaps.lua --file DUMP [--json] -- PID
local pid = tonumber(arg[1]) or error("usage: procmaps.lua ... -- PID", 0)
local p = assert(process(pid))
for _, v in ipairs(assert(p:vmas())) do
  emit({ pid = p.pid, comm = p.comm, start = v.start:hex(), stop = v.stop:hex(), perms = v.perms,
         offset = v.offset:hex(), file = v.file or "" },
       { "pid", "comm", "start", "stop", "perms", "offset", "file" })
end
