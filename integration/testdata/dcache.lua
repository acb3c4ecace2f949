-- dcache.lua DIR...: what scripts/lib/linux.lua reads from the dentry cache,
-- one fact a line, for integration/dcache_test.go to compare with what the
-- guest did and printed:
--   ENTRY DIR NAME INO TYPE MOUNTED   each cached, positive child of DIR
--   TRUNCATED DIR                     DIR has more children than the bound
--   FD PID FD PATH INO                each open file of each task
--   CWD PID PATH                      each task's working directory
--   KTHREAD PID BOOL                  whether each task is a kernel thread
--   HOLDER PATH PID FD                for each argument @PATH: who has it open
--   INDIR DIR PID                     for each directory argument: the user
--                                     processes working in it
local linux = require("linux")

local dirs = {}
for _, a in ipairs(arg) do
  if a:sub(1, 1) == "@" then
    local p = a:sub(2)
    local e = assert(linux.lookup(p))
    for _, h in ipairs(linux.file_holders(e.ino, e.sb)) do
      print(string.format("HOLDER %s %d %d", p, h.pid, h.fd))
    end
  else
    dirs[#dirs + 1] = a
    for _, t in ipairs(linux.tasks_in(assert(linux.lookup(a)).addr)) do
      print(string.format("INDIR %s %d", a, t.pid))
    end
  end
end

for _, dir in ipairs(dirs) do
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
  print(string.format("KTHREAD %d %s", t.pid, tostring(linux.is_kthread(t.addr))))
  local cwd = linux.task_cwd(t.addr)
  if cwd then print(string.format("CWD %d %s", t.pid, assert(linux.dentry_path(cwd)))) end
end
