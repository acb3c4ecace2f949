-- @module linux
-- Helpers that read Linux kernel structures, shared by monitors.
--
-- ```lua
-- local linux = require("linux")
-- for _, m in ipairs(linux.modules()) do print(m.name, m.addr) end
-- ```

local linux = {}

-- modules() returns the loaded kernel modules in list order (newest first, as
-- /proc/modules lists them), each as {addr = address, name = string}.
function linux.modules()
  local out = {}
  -- walk_list and one precomputed offset: a module's name is all it reads.
  local name_off = offsetof("module", "name")
  local head = assert(symbol("modules"))
  assert(walk_list(head, "module", "list", function(m)
    out[#out + 1] = {addr = m, name = assert(read_cstring(m + name_off, 56))}
  end))
  return out
end

-- is_live() tells whether the target is a running guest (QEMU, Xen) rather
-- than a dump, which never changes: a monitor polls the one, reads the other
-- once.
function linux.is_live()
  local t = guest_info().target
  return t:match("^live") ~= nil or t:match("^Xen") ~= nil
end

-- tasks() returns every task in the init_task.tasks list, starting with
-- init_task (pid 0), each as {addr = address, pid = number, comm = string}.
function linux.tasks()
  local out = {}
  local pid_off = offsetof("task_struct", "pid")
  local comm_off = offsetof("task_struct", "comm")
  local function add(t)
    out[#out + 1] = {addr = t, pid = assert(read_u32(t + pid_off)),
                     comm = assert(read_cstring(t + comm_off, 16))}
  end
  local init = assert(symbol("init_task"))
  add(init)
  assert(walk_list(init + offsetof("task_struct", "tasks"), "task_struct", "tasks", add))
  return out
end

-- The dentry cache: the guest kernel's own view of its file tree, as it is in
-- memory now (before any of it reaches a disk). A directory's cached children
-- are a list in its dentry: d_subdirs/d_child (list_head) up to 6.7,
-- d_children/d_sib (hlist) from 6.8. The cache holds only what the kernel has
-- looked up or created since it was last pruned, so a name missing here may
-- still exist on disk; a name present and positive exists now. Every walk is
-- bounded and refuses to visit a dentry twice: the guest writes these lists.

-- Bounds of the dcache walks (each overridable through an opts table).
linux.DCACHE_MAX_CHILDREN = 100000 -- children listed per directory
linux.DCACHE_MAX_NAME = 255        -- bytes of one name (NAME_MAX)
linux.DCACHE_MAX_DEPTH = 64        -- path components, parent links, mounts stacked
linux.MAX_FDS = 4096               -- open files looked at per task

-- d_flags bits (include/linux/dcache.h, the same in 6.1 and 6.12).
local DCACHE_MOUNTED = 0x10000
local DCACHE_DENTRY_CURSOR = 0x20000000

local S_IFMT_TYPES = {[0x1] = "fifo", [0x2] = "chardev", [0x4] = "dir", [0x6] = "blockdev",
                      [0x8] = "file", [0xA] = "symlink", [0xC] = "socket"}

-- file_type(mode) names the type in an inode's i_mode as on_disk_event's
-- ev.type does ("file", "dir", "symlink", "fifo", ...; "unknown").
function linux.file_type(mode)
  return S_IFMT_TYPES[math.floor(mode / 0x1000) % 16] or "unknown"
end

local function bit_set(v, b) return math.floor(v / b) % 2 == 1 end

local lay -- offsets, resolved once per run (one kernel per run)
local function layout()
  if lay then return lay end
  local l = {
    d_name_len = offsetof("dentry", "d_name") + offsetof("qstr", "len"),
    d_name_ptr = offsetof("dentry", "d_name") + offsetof("qstr", "name"),
    d_inode = offsetof("dentry", "d_inode"),
    d_parent = offsetof("dentry", "d_parent"),
    d_sb = offsetof("dentry", "d_sb"),
    d_flags = offsetof("dentry", "d_flags"),
    d_hash_pprev = offsetof("dentry", "d_hash.pprev"),
    i_ino = offsetof("inode", "i_ino"),
    i_mode = offsetof("inode", "i_mode"),
    fs_root_mnt = offsetof("fs_struct", "root.mnt"),
    fs_root_dentry = offsetof("fs_struct", "root.dentry"),
    fs_pwd_dentry = offsetof("fs_struct", "pwd.dentry"),
    mnt_in_mount = offsetof("mount", "mnt"),
    mnt_root = offsetof("vfsmount", "mnt_root"),
    mnt_mounts = offsetof("mount", "mnt_mounts"),
    mnt_mountpoint = offsetof("mount", "mnt_mountpoint"),
  }
  if has_member("dentry", "d_children") then -- 6.8+: hlist
    l.hlist = true
    l.children = offsetof("dentry", "d_children")
    l.sib = offsetof("dentry", "d_sib")
  else
    l.children = offsetof("dentry", "d_subdirs")
    l.sib = offsetof("dentry", "d_child")
  end
  lay = l
  return l
end

local ZERO = addr(0)
local function is_null(a) return a == ZERO end

local function opt(opts, k, def)
  local v = opts and opts[k]
  if v == nil then return def end
  return v
end

-- dentry(d [, opts]) reads one dentry at address d: {addr, name, ino, mode,
-- type, negative, unhashed, mounted, parent, sb (its super_block: inode
-- numbers are unique only within one)}, or nil, err when it cannot be
-- read. A negative dentry (a name the kernel knows does not exist, such as a
-- file just removed) has negative = true and no ino/mode/type; an unhashed
-- one has been removed from lookups (unlinked while still open).
function linux.dentry(d, opts)
  local l = layout()
  local len, err = read_u32(d + l.d_name_len)
  if not len then return nil, err end
  local max = opt(opts, "max_name", linux.DCACHE_MAX_NAME)
  local nameptr, err2 = read_addr(d + l.d_name_ptr)
  if not nameptr then return nil, err2 end
  local name = ""
  if len > 0 then
    local n = len
    if n > max then n = max end
    local s, err3 = read_bytes(nameptr, n)
    if not s then return nil, err3 end
    name = s
  end
  local flags, err4 = read_u32(d + l.d_flags)
  if not flags then return nil, err4 end
  local inode, err5 = read_addr(d + l.d_inode)
  if not inode then return nil, err5 end
  local pprev = read_addr(d + l.d_hash_pprev)
  local e = {addr = d, name = name, truncated = len > max or nil,
             parent = read_addr(d + l.d_parent), sb = read_addr(d + l.d_sb), flags = flags,
             cursor = bit_set(flags, DCACHE_DENTRY_CURSOR) or nil,
             mounted = bit_set(flags, DCACHE_MOUNTED) or nil,
             unhashed = (pprev ~= nil and is_null(pprev)) or nil}
  if is_null(inode) then
    e.negative = true
  else
    e.inode = inode
    local ino, err6 = read_addr(inode + l.i_ino)
    if not ino then return nil, err6 end
    e.ino = ino:tonumber()
    local mode, err7 = read_u16(inode + l.i_mode)
    if not mode then return nil, err7 end
    e.mode, e.type = mode, linux.file_type(mode)
  end
  return e
end

-- inode_times(inode) reads the change and modification times of the struct
-- inode at address inode, in seconds since the epoch (the guest's clock,
-- with nanoseconds): {ctime, mtime}, or nil, err. The fields moved between
-- kernels: i_ctime (timespec64) up to 6.5, __i_ctime from 6.6,
-- i_ctime_sec/i_ctime_nsec from 6.11; the same for mtime.
function linux.inode_times(inode)
  local out = {}
  for _, which in ipairs({"ctime", "mtime"}) do
    local sec_off, nsec_off
    if has_member("inode", "i_" .. which .. "_sec") then
      sec_off, nsec_off = offsetof("inode", "i_" .. which .. "_sec"), offsetof("inode", "i_" .. which .. "_nsec")
    else
      local m = has_member("inode", "__i_" .. which) and ("__i_" .. which) or ("i_" .. which)
      sec_off, nsec_off = offsetof("inode", m .. ".tv_sec"), offsetof("inode", m .. ".tv_nsec")
    end
    local sec, err = read_u64(inode + sec_off)
    if not sec then return nil, err end
    local nsec, err2 = read_u32(inode + nsec_off)
    if not nsec then return nil, err2 end
    -- time64_t is signed (a guest may date a file before 1970); beyond
    -- 2^53 seconds either way it is not a time but a lie: nil, err.
    local s
    if sec:shr(63) ~= ZERO then
      local mag = ZERO - sec
      if mag:shr(53) ~= ZERO then return nil, which .. " of inode " .. tostring(inode) .. " out of range" end
      s = -mag:tonumber()
    elseif sec:shr(53) ~= ZERO then
      return nil, which .. " of inode " .. tostring(inode) .. " out of range"
    else
      s = sec:tonumber()
    end
    out[which] = s + nsec / 1e9
  end
  return out
end

-- dentry_children(d [, opts]) lists the cached children of the directory
-- dentry at address d, in the kernel's list order, each as linux.dentry
-- gives it. Skipped unless opts asks for them: negative dentries
-- (opts.negative), unhashed ones (opts.unhashed); readdir cursors always.
-- At most opts.max_children (linux.DCACHE_MAX_CHILDREN) are listed; more
-- sets the second result (truncated) true. Returns nil, err when the list
-- cannot be read or loops.
function linux.dentry_children(d, opts)
  local l = layout()
  local max = opt(opts, "max_children", linux.DCACHE_MAX_CHILDREN)
  local out, seen, truncated, bad = {}, 0, false, nil
  local function visit(child)
    if seen >= max then truncated = true; return false end
    seen = seen + 1
    local e, err = linux.dentry(child, opts)
    if not e then bad = err; return false end
    if not e.cursor and (not e.negative or opt(opts, "negative", false))
       and (not e.unhashed or opt(opts, "unhashed", false)) then
      out[#out + 1] = e
    end
  end
  if l.hlist then
    local node, err = read_addr(d + l.children) -- hlist_head.first
    if not node then return nil, err end
    local visited = {}
    while not is_null(node) do
      local key = tostring(node)
      if visited[key] then return nil, "dentry_children: d_sib list of " .. tostring(d) .. " loops at " .. key end
      visited[key] = true
      if visit(node - l.sib) == false then break end
      local nxt, err2 = read_addr(node) -- hlist_node.next
      if not nxt then return nil, err2 end
      node = nxt
    end
  else
    local ok, err = walk_list(d + l.children, "dentry", "d_child", visit, max + 1)
    if not ok and not truncated and not bad then return nil, err end
  end
  if bad then return nil, bad end
  return out, truncated
end

-- mount_of(vfsmnt) is the struct mount around a struct vfsmount pointer.
local function mount_of(vfsmnt) return vfsmnt - layout().mnt_in_mount end

-- over_mounts(mnt, d) follows the mounts stacked on dentry d of mount mnt
-- (mnt a struct mount address) and returns the mount and dentry that a path
-- through d reaches: the root of the topmost mount.
local function over_mounts(mnt, d, opts)
  local l = layout()
  for _ = 1, opt(opts, "max_depth", linux.DCACHE_MAX_DEPTH) do
    local flags = read_u32(d + l.d_flags)
    if not flags or not bit_set(flags, DCACHE_MOUNTED) then return mnt, d end
    local top
    local ok, err = walk_list(mnt + l.mnt_mounts, "mount", "mnt_child", function(m)
      local mp = read_addr(m + l.mnt_mountpoint)
      if mp and mp == d then top = m end -- the last one mounted is on top
    end, 10000)
    if not ok then return nil, nil, "mounts on " .. tostring(mnt) .. ": " .. tostring(err) end
    if not top then return mnt, d end -- mounted in another namespace
    local root, err = read_addr(top + l.mnt_in_mount + l.mnt_root)
    if not root then return nil, nil, err end
    mnt, d = top, root
  end
  return nil, nil, "mounts stacked deeper than max_depth"
end

-- root([task]) returns the root directory as task sees it (its fs->root;
-- default init_task): the struct mount and dentry addresses, with the mounts
-- stacked on it followed.
function linux.root(task)
  local l = layout()
  task = task or assert(symbol("init_task"))
  local fs, err = read_addr(task + offsetof("task_struct", "fs"))
  if not fs then return nil, nil, err end
  if is_null(fs) then return nil, nil, "task " .. tostring(task) .. " has no fs (exiting)" end
  local vfsmnt, err2 = read_addr(fs + l.fs_root_mnt)
  if not vfsmnt then return nil, nil, err2 end
  local d, err3 = read_addr(fs + l.fs_root_dentry)
  if not d then return nil, nil, err3 end
  return over_mounts(mount_of(vfsmnt), d)
end

-- lookup(path [, opts]) finds the dentry of absolute path through the
-- dcache, from the root of opts.task (default init_task), crossing mount
-- points: it returns the linux.dentry table of the last component (with
-- .mount, the struct mount it is in), or nil, err when a component is not in
-- the cache (not looked up since boot or pruned, or it does not exist), is
-- negative, or cannot be read. "." and ".." are not interpreted.
function linux.lookup(path, opts)
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
    error("lookup: path must be absolute, not " .. tostring(path), 2)
  end
  local mnt, d, err = linux.root(opt(opts, "task", nil))
  if not mnt then return nil, err end
  local depth = 0
  for comp in path:gmatch("[^/]+") do
    depth = depth + 1
    if depth > opt(opts, "max_depth", linux.DCACHE_MAX_DEPTH) then
      return nil, "lookup " .. path .. ": deeper than max_depth"
    end
    local kids, kerr = linux.dentry_children(d, opts)
    if not kids then return nil, "lookup " .. path .. ": " .. tostring(kerr) end
    local found
    for _, k in ipairs(kids) do
      if k.name == comp then found = k; break end
    end
    if not found then return nil, "lookup " .. path .. ": " .. comp .. " not in the dentry cache" end
    mnt, d, err = over_mounts(mnt, found.addr, opts)
    if not mnt then return nil, "lookup " .. path .. ": " .. tostring(err) end
  end
  local e, derr = linux.dentry(d, opts)
  if not e then return nil, derr end
  e.mount = mnt
  return e
end

-- dir_entries(path [, opts]) lists the cached children of the directory at
-- absolute path, as dentry_children does (positive, hashed entries unless
-- opts says otherwise), after linux.lookup found it. Returns entries,
-- truncated, or nil, err.
function linux.dir_entries(path, opts)
  local dir, err = linux.lookup(path, opts)
  if not dir then return nil, err end
  return linux.dentry_children(dir.addr, opts)
end

-- dentry_path(d [, opts]) is the path of dentry d from the root of its file
-- system (its super block's root, where d_parent points to itself), such as
-- "/foo/bar"; mount points above it are not followed.
function linux.dentry_path(d, opts)
  local parts = {}
  for _ = 1, opt(opts, "max_depth", linux.DCACHE_MAX_DEPTH) do
    local e, err = linux.dentry(d, opts)
    if not e then return nil, err end
    if not e.parent or e.parent == d then
      local n = #parts
      for i = 1, math.floor(n / 2) do parts[i], parts[n + 1 - i] = parts[n + 1 - i], parts[i] end
      return "/" .. table.concat(parts, "/")
    end
    parts[#parts + 1] = e.name
    d = e.parent
  end
  return nil, "dentry_path: deeper than max_depth"
end

-- task_files(task [, opts]) lists the files open in task (a task_struct
-- address): {fd = number, file = address, dentry = address} for each
-- non-empty slot of files->fdt->fd[], at most opts.max_fds
-- (linux.MAX_FDS). A task without files (a kernel thread, an exiting task)
-- gives an empty list. Returns nil, err when a pointer cannot be read.
function linux.task_files(task, opts)
  local files, err = read_addr(task + offsetof("task_struct", "files"))
  if not files then return nil, err end
  local out = {}
  if is_null(files) then return out end
  local fdt, err2 = read_addr(files + offsetof("files_struct", "fdt"))
  if not fdt then return nil, err2 end
  local n, err3 = read_u32(fdt + offsetof("fdtable", "max_fds"))
  if not n then return nil, err3 end
  local arr, err4 = read_addr(fdt + offsetof("fdtable", "fd"))
  if not arr then return nil, err4 end
  local max = opt(opts, "max_fds", linux.MAX_FDS)
  if n > max then n = max end
  local psize = offsetof("list_head", "prev") -- a pointer's size
  local dentry_off = offsetof("file", "f_path.dentry")
  for fd = 0, n - 1 do
    local f = read_addr(arr + fd * psize)
    if f and not is_null(f) then
      local d = read_addr(f + dentry_off)
      if d then out[#out + 1] = {fd = fd, file = f, dentry = d} end
    end
  end
  return out
end

-- task_cwd(task) returns the dentry address of task's working directory
-- (fs->pwd.dentry), or nil, err (an exiting task has no fs). Kernel threads
-- share init's fs_struct, so their cwd moves with pid 1's.
function linux.task_cwd(task)
  local fs, err = read_addr(task + offsetof("task_struct", "fs"))
  if not fs then return nil, err end
  if is_null(fs) then return nil, "task " .. tostring(task) .. " has no fs" end
  return read_addr(fs + layout().fs_pwd_dentry)
end

-- file_holders(ino, sb [, opts]) lists the tasks that have open the file
-- with inode number ino on super block sb (a dentry's .sb), as {pid, comm,
-- fd, task}, one per open descriptor, in task-list order. Tasks whose files
-- cannot be read (exiting as we look) are passed over; a task list that
-- cannot be read raises an error, as linux.tasks() does.
function linux.file_holders(ino, sb, opts)
  local out = {}
  for _, t in ipairs(linux.tasks()) do
    local files = linux.task_files(t.addr, opts)
    for _, f in ipairs(files or {}) do
      local e = linux.dentry(f.dentry, opts)
      if e and e.ino == ino and e.sb == sb then
        out[#out + 1] = {pid = t.pid, comm = t.comm, fd = f.fd, task = t.addr}
      end
    end
  end
  return out
end

-- path_layout() adds to layout() the offsets that d_path and file_path
-- need (resolved on first use: the dcache walks above do without them).
local function path_layout()
  local l = layout()
  if l.mnt_parent then return l end
  l.mnt_parent = offsetof("mount", "mnt_parent")
  l.d_op = offsetof("dentry", "d_op")
  l.d_dname = offsetof("dentry_operations", "d_dname")
  l.s_type = offsetof("super_block", "s_type")
  l.fs_name = offsetof("file_system_type", "name")
  l.f_mnt = offsetof("file", "f_path.mnt")
  l.f_dentry = offsetof("file", "f_path.dentry")
  return l
end

-- fs_root(task) returns task's root directory as its fs_struct holds it
-- (fs->root: a struct vfsmount and a dentry address, no mounts followed),
-- the root that d_path stops at; or nil, nil, err.
local function fs_root(task)
  local fs, err = read_addr(task + offsetof("task_struct", "fs"))
  if not fs then return nil, nil, err end
  if is_null(fs) then return nil, nil, "task " .. tostring(task) .. " has no fs (exiting)" end
  local l = layout()
  local vfsmnt, err2 = read_addr(fs + l.fs_root_mnt)
  if not vfsmnt then return nil, nil, err2 end
  local d, err3 = read_addr(fs + l.fs_root_dentry)
  if not d then return nil, nil, err3 end
  return vfsmnt, d
end

-- d_path(vfsmnt, d [, opts]) is the path of dentry d seen through mount
-- vfsmnt (a struct vfsmount address, as a struct path holds it), built as
-- the kernel's prepend_path does: the dentries' names up to the root of
-- their mount, then on from the mountpoint in the parent mount, until the
-- root of opts.task (default init_task; opts.root = {vfsmnt, dentry} gives
-- one). A path that leaves the mount tree without passing that root (a
-- file outside the task's chroot, on an internal or detached mount) is
-- given from the top it reached, as the kernel gives it. A dentry that was
-- unlinked while open gets " (deleted)" appended, as in /proc/PID/fd.
-- At most opts.max_depth (linux.DCACHE_MAX_DEPTH) names, and max_depth^2
-- steps through dentries and mounts: a cycle in the guest's links ends
-- there with nil, err, as does a pointer that cannot be read.
function linux.d_path(vfsmnt, d, opts)
  local l = path_layout()
  local rmnt, rd, err
  local root = opt(opts, "root", nil)
  if root then
    rmnt, rd = root[1], root[2]
  else
    rmnt, rd, err = fs_root(opt(opts, "task", nil) or assert(symbol("init_task")))
    if not rmnt then return nil, err end
  end
  local e, derr = linux.dentry(d, opts)
  if not e then return nil, derr end
  local deleted = (e.unhashed and e.parent ~= d) and " (deleted)" or ""
  local max = opt(opts, "max_depth", linux.DCACHE_MAX_DEPTH)
  local parts, steps = {}, 0
  while not (d == rd and vfsmnt == rmnt) do
    steps = steps + 1
    if steps > max * max then return nil, "d_path: deeper than max_depth at dentry " .. tostring(d) end
    local mroot, err2 = read_addr(vfsmnt + l.mnt_root)
    if not mroot then return nil, err2 end
    if d == mroot then
      local mnt = mount_of(vfsmnt)
      local parent, err3 = read_addr(mnt + l.mnt_parent)
      if not parent then return nil, err3 end
      if parent == mnt then break end -- the top of a mount tree
      local mp, err4 = read_addr(mnt + l.mnt_mountpoint)
      if not mp then return nil, err4 end
      d, vfsmnt = mp, parent + l.mnt_in_mount
    else
      e, derr = linux.dentry(d, opts)
      if not e then return nil, derr end
      if not e.parent or e.parent == d then break end -- escaped its mount
      if #parts >= max then return nil, "d_path: deeper than max_depth at dentry " .. tostring(d) end
      parts[#parts + 1] = e.name
      d = e.parent
    end
  end
  local n = #parts
  for i = 1, math.floor(n / 2) do parts[i], parts[n + 1 - i] = parts[n + 1 - i], parts[i] end
  return "/" .. table.concat(parts, "/") .. deleted
end

-- The d_dname functions whose link text file_path writes as the kernel
-- does (net/socket.c, fs/pipe.c, fs/anon_inodes.c, fs/d_path.c, and 6.9's
-- fs/pidfs.c, whose pidfds keep the name they had as anonymous inodes).
local DNAME = {
  sockfs_dname = function(e) return "socket:[" .. e.ino .. "]" end,
  pipefs_dname = function(e) return "pipe:[" .. e.ino .. "]" end,
  anon_inodefs_dname = function(e) return "anon_inode:" .. e.name end,
  pidfs_dname = function() return "anon_inode:[pidfd]" end,
  simple_dname = function(e) return "/" .. e.name .. " (deleted)" end, -- memfd and other pseudo files
  ns_dname = function(e) -- fs/nsfs.c: the namespace type's name, from inode->i_private (a ns_common)
    local ns = read_addr(e.inode + offsetof("inode", "i_private"))
    local ops = ns and read_addr(ns + offsetof("ns_common", "ops"))
    local name = ops and read_addr(ops + offsetof("proc_ns_operations", "name"))
    return (name and read_cstring(name, 32) or "nsfs") .. ":[" .. e.ino .. "]"
  end,
}
local DNAME_FS = {sockfs = "sockfs_dname", pipefs = "pipefs_dname", anon_inodefs = "anon_inodefs_dname",
                  nsfs = "ns_dname", pidfs = "pidfs_dname"}

-- file_path(file [, opts]) is what readlink of /proc/PID/fd/N gives for the
-- struct file at address file: its d_path across mounts (see linux.d_path;
-- opts.task is the task whose root ends it), or for a pseudo file whose
-- dentry names itself (d_op->d_dname) "socket:[INODE]", "pipe:[INODE]",
-- "anon_inode:[eventpoll]", "anon_inode:[pidfd]" (also 6.9's pidfs),
-- "net:[4026531840]" (a namespace) or "/memfd:NAME (deleted)". The d_dname
-- function is told by its symbol (symbol_at), else by the file system's
-- name; one not known here gives "FSTYPE:[INODE]".
-- Second result: the file system type's name ("ext4", "sockfs", "?" when
-- unreadable). Returns nil, err when a pointer cannot be read.
function linux.file_path(file, opts)
  local l = path_layout()
  local vfsmnt, err = read_addr(file + l.f_mnt)
  if not vfsmnt then return nil, err end
  local d, err2 = read_addr(file + l.f_dentry)
  if not d then return nil, err2 end
  local e, err3 = linux.dentry(d, opts)
  if not e then return nil, err3 end
  local st = e.sb and read_addr(e.sb + l.s_type)
  local stname = st and read_addr(st + l.fs_name)
  local fstype = stname and read_cstring(stname, 64) or "?"
  local dop = read_addr(d + l.d_op)
  local dname = dop and not is_null(dop) and read_addr(dop + l.d_dname)
  if dname and not is_null(dname) and not (e.parent == d and d == read_addr(vfsmnt + l.mnt_root)) then
    local _, sym = symbol_at(dname)
    local f = DNAME[sym and sym.offset == 0 and sym.name or DNAME_FS[fstype] or ""]
    if f and (e.inode or f == DNAME.anon_inodefs_dname or f == DNAME.simple_dname) then return f(e), fstype end
    return fstype .. ":[" .. tostring(e.ino) .. "]", fstype
  end
  local p, err4 = linux.d_path(vfsmnt, d, opts)
  if not p then return nil, err4 end
  return p, fstype
end

-- MAX_PROC_STRINGS bounds the bytes of argv or of the environment that
-- proc_strings reads: the kernel bounds them only by the stack limit, and
-- the process (hostile as the guest) sets arg_start..env_end itself
-- (prctl PR_SET_MM).
linux.MAX_PROC_STRINGS = 128 * 1024

-- proc_strings(p, which [, max]) reads a process's arguments (which =
-- "arg") or environment ("env") from its own memory through p, a process
-- object (process(pid)): the bytes from mm->arg_start to arg_end (or
-- env_start to env_end), at most max (linux.MAX_PROC_STRINGS) of them,
-- split at each NUL. Returns the strings and a truncated flag (more than
-- max bytes, or a last string without its NUL), or nil, err (a page of them
-- not present, an mm being torn down). Unlike /proc/PID/cmdline, a process
-- that overwrote its argv area (setproctitle) is not followed into its
-- environment.
function linux.proc_strings(p, which, max)
  max = max or linux.MAX_PROC_STRINGS
  local mm, err = view("mm_struct", p.mm)
  if not mm then return nil, err end
  local a, b = field(mm, which .. "_start"), field(mm, which .. "_end")
  if not a or not b then return nil, "mm " .. tostring(p.mm) .. ": " .. which .. "_start/end unreadable" end
  if b < a then return nil, which .. " area of pid " .. p.pid .. " ends before it starts" end
  local truncated = b - a > addr(max)
  local n = truncated and max or (b - a):tonumber()
  local out = {}
  if n == 0 then return out, truncated end
  local s, err2 = p:read_bytes(a, n)
  if not s then return nil, err2 end
  local i = 1
  while i <= #s do
    local j = s:find("\0", i, true)
    if not j then out[#out + 1] = s:sub(i); truncated = true; break end
    out[#out + 1] = s:sub(i, j - 1)
    i = j + 1
  end
  return out, truncated
end

-- PF_KTHREAD in task_struct.flags (include/linux/sched.h, 6.1 and 6.12).
local PF_KTHREAD = 0x00200000

-- is_kthread(task) tells whether the task_struct at task is a kernel thread.
function linux.is_kthread(task)
  local flags = read_u32(task + offsetof("task_struct", "flags"))
  return flags ~= nil and bit_set(flags, PF_KTHREAD)
end

-- tasks_in(dir [, opts]) lists the user processes whose working directory is
-- the dentry at address dir, as {pid, comm, task}, in task-list order
-- (newest last). Kernel threads are left out unless opts.kthreads: they
-- share init's fs_struct (kernel_init execs /init without unsharing it), so
-- a `cd` of pid 1 moves all of them too.
function linux.tasks_in(dir, opts)
  local out = {}
  for _, t in ipairs(linux.tasks()) do
    local cwd = linux.task_cwd(t.addr)
    if cwd and cwd == dir and (opt(opts, "kthreads", false) or not linux.is_kthread(t.addr)) then
      out[#out + 1] = {pid = t.pid, comm = t.comm, task = t.addr}
    end
  end
  return out
end

return linux
