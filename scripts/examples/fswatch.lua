-- fswatch.lua [-i SECONDS] [-b SECONDS] [-m MOUNT] PATH: watch one folder of
-- the guest through memory and disk together (XenAccess's answer to the
-- flush window). Memory: the guest kernel's dentry cache, polled every -i
-- seconds (default 0.2), shows a new name at once. Disk: the writes that
-- reach xascript's NBD tap show it when the guest flushes, and a rootkit in
-- the guest cannot hide them. Each change is reported once with both times;
-- a change seen in one view and not in the other within -b seconds
-- (default 30: longer than ext4's 5 s commit) is flagged:
--   MEMORY-ONLY  created and removed before any flush (never on disk), or a
--                removal whose flush is still pending
--   DISK-ONLY    a new name on disk that the kernel's dcache never showed
--                (hidden from the kernel's own view: a rootkit's mark), or a
--                removal on disk of a name the dcache still shows
--   DISK         on disk while the folder was not in the dcache yet (no
--                memory view to compare with)
-- A name that was there before the watch and enters the dcache later (the
-- guest looked it up) is not a change: its inode is older than the folder's
-- ctime when the watch began. A change made before the watch and flushed
-- after it is reported from the disk with "already in memory when watching
-- began" (or "not in memory" for a removal): the views agree.
-- On each disk event it names the processes that have the file open, or else
-- the last one whose working directory is the folder, as the guest's memory
-- shows them at that moment.
--   xascript fswatch.lua --qemu QMP --disk IMG --nbd SOCKET -- -m /mnt /root
-- PATH is the folder in the disk's file system (what on_disk_event takes);
-- -m is where the guest mounts that file system (default /), so the dcache
-- is read at MOUNT..PATH.
local linux = require("linux")

local interval, bound, mount, path = 0.2, 30, "/", nil
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "-i" then interval = assert(tonumber(arg[i + 1]), "-i SECONDS"); i = i + 1
  elseif a == "-b" then bound = assert(tonumber(arg[i + 1]), "-b SECONDS"); i = i + 1
  elseif a == "-m" then mount = assert(arg[i + 1], "-m MOUNT"); i = i + 1
  elseif path == nil and a:sub(1, 1) == "/" then path = a
  else error("usage: fswatch.lua [-i SECONDS] [-b SECONDS] [-m MOUNT] PATH, not " .. a) end
  i = i + 1
end
path = path or "/root"
if not pcall(symbol, "init_task") then -- raises only when there is no target
  error("fswatch.lua needs the guest's memory too: give --qemu QMP (or --dom) with --disk IMG --nbd SOCKET", 0)
end
local gpath = (mount:gsub("/+$", "")) .. path
if gpath == "" then gpath = "/" end

local function clock(t)
  return os.date("!%H:%M:%S", math.floor(t)) .. string.format(".%03d", math.floor((t % 1) * 1000))
end

local function name_of(p) return p:match("([^/]+)$") end

-- Half-changes waiting for the other view: {view, op, name, t, ino, note}.
local pending = {}

-- The memory view: name -> {ino, type, inode} of the folder's positive,
-- hashed dentries (nil until the folder is first found in the dcache), when
-- each name was first seen (first; base: already there when watching
-- began), and the folder's own dentry (for cwd and super block). The dcache
-- is a cache: a name that was on disk all along enters it when the guest
-- looks it up (ls -l, open). Such a name is told from a new file by its
-- inode's ctime: not after the folder's ctime when watching began (since),
-- the guest's clock on both sides. A file whose attributes changed after
-- that and is then looked up counts as new: a rare false change.
local seen, dir, warned, since = nil, nil, nil, nil
local first, base, missing = {}, {}, {}

local function report(mem, disk)
  local when = mem.base and "already in memory when watching began" or ("seen in memory at " .. clock(mem.t))
  local line = string.format("%s %s/%s: %s, on disk at %s", disk.op, path, disk.name, when, clock(disk.t))
  if not mem.base then line = line .. string.format(" (%+.3f s)", disk.t - mem.t) end
  if mem.ino and disk.ino and mem.ino ~= disk.ino then
    line = line .. string.format(", inode %d in memory but %d on disk", mem.ino, disk.ino)
  elseif disk.ino then
    line = line .. string.format(", inode %d", disk.ino)
  end
  if disk.note then line = line .. "; " .. disk.note end
  print(line)
end

-- add takes one half-change and reports it with its pair from the other view,
-- or keeps it pending.
local function add(h)
  for k, p in ipairs(pending) do
    if p.view ~= h.view and p.op == h.op and p.name == h.name then
      table.remove(pending, k)
      if h.view == "memory" then report(h, p) else report(p, h) end
      return
    end
  end
  if h.view == "disk" and seen and not h.blind then
    local now_in = seen[h.name]
    if h.op:sub(1, 2) == "MK" and now_in then
      -- Made before memory could tell (cached when watching began, or a
      -- lookup of a name whose creation came first): the memory view agrees.
      report({t = first[h.name], base = base[h.name], ino = now_in.ino}, h)
      return
    elseif h.op:sub(1, 2) == "RM" and not now_in then
      -- Gone from memory before it was seen there: the views agree.
      print(string.format("%s %s/%s: on disk at %s, not in memory since watching began%s%s", h.op, path, h.name,
        clock(h.t), h.ino and string.format(", inode %d", h.ino) or "", h.note and ("; " .. h.note) or ""))
      return
    end
  end
  pending[#pending + 1] = h
end

-- expire flags the half-changes that waited longer than the bound. A memory
-- creation is folded with its memory removal: the file lived and died
-- between two flushes.
local function expire(now_t)
  local keep = {}
  local folded = {}
  for k, p in ipairs(pending) do
    if folded[k] then
      -- printed with its creation
    elseif now_t - p.t <= bound then
      keep[#keep + 1] = p
    elseif p.view == "memory" then
      local rm
      if p.op:sub(1, 2) == "MK" then
        for j = k + 1, #pending do
          local q = pending[j]
          if q.view == "memory" and q.name == p.name and q.op:sub(1, 2) == "RM" then rm = j; break end
        end
      end
      if rm then
        folded[rm] = true
        print(string.format("MEMORY-ONLY %s/%s: created at %s, removed at %s, never on disk within %g s%s", path, p.name,
          clock(p.t), clock(pending[rm].t), bound, p.ino and string.format(", inode %d", p.ino) or ""))
      else
        print(string.format("MEMORY-ONLY %s %s/%s: seen in memory at %s, not on disk within %g s%s", p.op, path, p.name,
          clock(p.t), bound, p.note and ("; " .. p.note) or ""))
      end
    elseif p.op:sub(1, 2) == "MK" and seen and seen[p.name] and not p.blind then
      report({t = first[p.name], base = base[p.name], ino = seen[p.name].ino}, p) -- cached late
    elseif p.blind then
      print(string.format("DISK %s %s/%s: on disk at %s (no memory view then)%s%s", p.op, path, p.name, clock(p.t),
        p.ino and string.format(", inode %d", p.ino) or "", p.note and ("; " .. p.note) or ""))
    else
      local what = p.op:sub(1, 2) == "RM" and "still in the guest's dentry cache after" or
        "never in the guest's dentry cache within"
      print(string.format("DISK-ONLY %s %s/%s: on disk at %s, %s %g s%s%s", p.op, path, p.name, clock(p.t), what,
        bound, p.ino and string.format(", inode %d", p.ino) or "", p.note and ("; " .. p.note) or ""))
    end
  end
  pending = keep
end

local function mk(typ) return typ == "dir" and "MKDIR" or "MKFILE" end
local function rm(typ) return typ == "dir" and "RMDIR" or "RMFILE" end

local function poll()
  flush_cache() -- the guest runs: what was translated before may have moved
  local t = now()
  local d, err = linux.lookup(gpath)
  if not d then
    if warned ~= err then print("memory: " .. gpath .. ": " .. tostring(err) .. " (retrying)"); warned = err end
    return
  end
  local kids, kerr = linux.dentry_children(d.addr, {negative = true, unhashed = true})
  if not kids then
    if warned ~= kerr then print("memory: " .. gpath .. ": " .. tostring(kerr) .. " (retrying)"); warned = kerr end
    return
  end
  warned = nil
  local cur, why = {}, {}
  for _, k in ipairs(kids) do
    if k.negative then why[k.name] = "removed"
    elseif k.unhashed then why[k.name] = "removed while open"
    else cur[k.name] = {ino = k.ino, type = k.type, inode = k.inode} end
  end
  if not seen then
    local times, terr = linux.inode_times(d.inode)
    if not times then
      if warned ~= terr then print("memory: " .. gpath .. ": " .. tostring(terr) .. " (retrying)"); warned = terr end
      return
    end
    local n = 0
    for _ in pairs(cur) do n = n + 1 end
    print(string.format("memory: watching %s (%d names cached), every %g s", gpath, n, interval))
    seen, dir, since = cur, d, times.ctime
    for name in pairs(cur) do first[name], base[name] = t, true end
    return
  end
  dir = d
  for name, e in pairs(cur) do
    local old = seen[name]
    if old and old.ino ~= e.ino then
      add({view = "memory", op = rm(old.type), name = name, t = t, ino = old.ino})
      old = nil
    end
    if not old and not seen[name] then
      -- First seen: new, or an old name just looked up (see since).
      first[name], base[name] = t, nil
      local times = linux.inode_times(e.inode)
      if times and times.ctime <= since then old, base[name] = e, true end
    end
    if not old then add({view = "memory", op = mk(e.type), name = name, t = t, ino = e.ino}) end
  end
  for name, old in pairs(seen) do
    if not cur[name] then
      if why[name] or missing[name] then
        add({view = "memory", op = rm(old.type), name = name, t = missing[name] or t, ino = old.ino,
             note = why[name] or "left the dentry cache"})
        missing[name] = nil
      else
        -- Read while the guest runs, a list can come out short without a
        -- fault; a name that is simply absent (not a negative dentry) is
        -- gone only if the next poll agrees.
        missing[name] = t
        cur[name] = old
      end
    else
      missing[name] = nil
    end
  end
  seen = cur
end

-- who names the processes that hold the file (inode ino in the folder's file
-- system) open, else the last one working in the folder, from memory now.
local function who(ino)
  if not dir then return "memory view not ready" end
  local ok, res = pcall(function()
    local names = {}
    if ino then
      for _, h in ipairs(linux.file_holders(ino, dir.sb)) do
        names[#names + 1] = string.format("%s[%d] fd %d", h.comm, h.pid, h.fd)
      end
    end
    if #names > 0 then return "open by " .. table.concat(names, ", ") end
    local in_dir = linux.tasks_in(dir.addr)
    if #in_dir > 0 then
      local last = in_dir[#in_dir]
      return string.format("not open; last process in the folder: %s[%d]", last.comm, last.pid)
    end
    return "not open, no process in the folder"
  end)
  if not ok then return "processes unreadable: " .. tostring(res) end
  return res
end

on_disk_event(path, function(ev)
  if ev.op == "ERROR" or ev.op == "LOST" then
    print(string.format("disk: %s %s %s", ev.op, ev.path or "", ev.error or ""))
    return
  end
  if ev.path:match("^(.*)/[^/]+$") ~= path:gsub("/+$", "") then return end -- only the folder's own names
  poll() -- the memory view as of this event, before pairing
  local t = ev.time or now()
  local note = who(ev.op:sub(1, 2) ~= "RM" and ev.inode or nil)
  local blind = seen == nil -- no memory view: nothing to flag it against
  if ev.op == "RENAME" then
    add({view = "disk", op = rm(ev.type), name = name_of(ev.old_path), t = t, ino = ev.inode, note = "renamed",
         blind = blind})
    add({view = "disk", op = mk(ev.type), name = name_of(ev.path), t = t, ino = ev.inode, note = note, blind = blind})
  elseif ev.op:sub(1, 2) == "MK" or ev.op:sub(1, 2) == "RM" then
    add({view = "disk", op = ev.op, name = name_of(ev.path), t = t, ino = ev.inode, note = note, blind = blind})
  end
end)
print(string.format("disk: watching %s, bound %g s", path, bound))

poll()
every(interval, function()
  poll()
  expire(now())
end)
