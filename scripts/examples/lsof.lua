-- lsof.lua: the open files of every process (or of the one whose pid is
-- the argument), one record per descriptor: pid, comm, fd and path, the
-- text readlink of the guest's /proc/PID/fd/FD gives: the full path across
-- mounts (" (deleted)" when unlinked), or "socket:[INODE]", "pipe:[INODE]",
-- "anon_inode:[eventpoll]"; fs is the file system type. Walks
-- task->files->fdt->fd[] (at most linux.MAX_FDS slots per process); a
-- file whose pointers cannot be read gives a record with error set.
-- usage: xascript scripts/examples/lsof.lua --file DUMP [--json] [-- PID]
local linux = require("linux")
local only = arg[1] and (tonumber(arg[1]) or error("usage: lsof.lua ... [-- PID]", 0))
for _, t in ipairs(linux.tasks()) do
  if not only or t.pid == only then
    local files, err = linux.task_files(t.addr)
    if not files then emit({ pid = t.pid, comm = t.comm, error = err }, { "pid", "comm" }) end
    for _, f in ipairs(files or {}) do
      local path, fs = linux.file_path(f.file, { task = t.addr })
      emit({ pid = t.pid, comm = t.comm, fd = f.fd, path = path, fs = path and fs, error = not path and fs or nil },
        { "pid", "comm", "fd", "path", "fs" })
    end
  end
end
