-- root.lua READY STOP: for TestGuestLiveQEMUChurn's "root outlives its task".
-- Prints the page-table root xascript chose and every task's page-table
-- root (mm->pgd, physical), creates READY, then walks the module list every
-- 100 ms (not paused, translations flushed each round) until STOP exists,
-- and prints the modules it then sees. Guest faults come back as nil, err:
-- they are counted and the first few printed, never raised.
-- exists(path): whether the file is there (closing what it opened, so a
-- long loop holds no descriptors).
local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

local ready, stop = assert(arg[1], "READY file"), assert(arg[2], "STOP file")
local gi = guest_info()
print("ROOT", tostring(gi.root), gi.root_source, tostring(gi.text_phys))

local mm_off, pgd_off = offsetof("task_struct", "mm"), offsetof("mm_struct", "pgd")
local pid_off, comm_off = offsetof("task_struct", "pid"), offsetof("task_struct", "comm")
local init = assert(symbol("init_task"))
assert(walk_list(init + offsetof("task_struct", "tasks"), "task_struct", "tasks", function(t)
  local mm = read_addr(t + mm_off)
  if mm and mm ~= addr(0) then
    local pgd = read_addr(mm + pgd_off)
    local pa = pgd and translate(pgd)
    print("TASK", read_u32(t + pid_off), read_cstring(t + comm_off, 16), tostring(pa))
  end
end))

local name_off = offsetof("module", "name")
local modules = assert(symbol("modules"))
local function module_names()
  local names = {}
  local n, err = walk_list(modules, "module", "list", function(m)
    local name, err = read_cstring(m + name_off, 56)
    if not name then names.err = err; return false end
    names[#names + 1] = name
  end)
  return n and not names.err and names, names.err or err
end

assert(module_names())
assert(io.open(ready, "w")):close()
local rounds, faults = 0, 0
while not exists(stop) do
  flush_cache()
  local names, err = module_names()
  rounds = rounds + 1
  if not names then
    faults = faults + 1
    if faults <= 5 then print("FAULT", err) end
  end
  sleep(0.1)
end
flush_cache()
local names, err = module_names()
if not names then error("after the churn: " .. err, 0) end
for _, n in ipairs(names) do print("MOD", n) end
print("ROUNDS", rounds, "FAULTS", faults)
