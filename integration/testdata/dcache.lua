-- dcache.lua DIR...: what scripts/lib/linux.lua reads from the dentry cache,
-- one fact a line, for integration/dcache_test.go to compare with what the
-- guest did and printed:
--   ENTRY DIR NAME INO TYPE MOUNTED   each cached, positive child of DIR
--   TRUNCATED DIR                     DIR has more children than the bound
--   FD PID FD PATH INO                each open file of each task
--   CWD PID PATH                      each task's working directory
local linux = require("linux")

for _, dir in ipairs(arg) do
  local kids, truncated = linux.dir_entries(dir)
  assert(kids, truncated)
  for _, k in ipairs(kids) do
    print(string.format("ENTRY %s %s %d %s %s", dir, k.name, k.ino, k.type, tostring(k.mounted == true)))
  end
  if truncated then print("TRUNCATED " .. dir) end
end

for _, t in ipairs(linux.tasks()) do
  local files = assert(linux.task_files(t.addr))
  for _, f in ipairs(files) do
    local e = assert(linux.dentry(f.dentry))
    print(string.format("FD %d %d %s %s", t.pid, f.fd, assert(linux.dentry_path(f.dentry)),
      e.ino and string.format("%d", e.ino) or "-"))
  end
  local cwd = linux.task_cwd(t.addr)
  if cwd then print(string.format("CWD %d %s", t.pid, assert(linux.dentry_path(cwd)))) end
end
