-- unpaused.lua STOP [INTERVAL]: the unpaused monitor of the churn suite.
-- Every INTERVAL seconds (default 0.1), without pausing the guest: what
-- modwatch.lua reports (modules loaded and unloaded since the last round)
-- and what ps.lua lists (every task), read with the primitives, whose guest
-- faults come back as nil, err. The guest changes under the walks, so a
-- round may fail: it prints one line "ERR <what>: <err>" and the next round
-- goes on. Anything raised instead ends the script (the test fails). When
-- the file STOP exists: one more round, the modules as "FINAL name" lines,
-- and "ROUNDS n ERRORS e".
-- exists(path): whether the file is there (closing what it opened, so a
-- long loop holds no descriptors).
local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

local stop = assert(arg[1], "STOP file")
local interval = tonumber(arg[2]) or 0.1

local modules, init = assert(symbol("modules")), assert(symbol("init_task"))
local name_off = offsetof("module", "name")
local tasks_off = offsetof("task_struct", "tasks")
local pid_off, comm_off = offsetof("task_struct", "pid"), offsetof("task_struct", "comm")

local errors = 0
local function fail(what, err)
  errors = errors + 1
  assert(type(err) == "string", what .. ": err is not a string")
  print("ERR " .. what .. ": " .. err)
end

-- modules(): names in list order, or nil, err.
local function modules_now()
  local names, ferr = {}, nil
  local n, err = walk_list(modules, "module", "list", function(m)
    local name, e = read_cstring(m + name_off, 56)
    if not name then ferr = e; return false end
    names[#names + 1] = name
  end)
  if not n then return nil, err end
  if ferr then return nil, ferr end
  return names
end

-- tasks(): how many, or nil, err.
local function tasks_now()
  local count, ferr = 0, nil
  local n, err = walk_list(init + tasks_off, "task_struct", "tasks", function(t)
    local pid, e = read_u32(t + pid_off)
    local comm, e2 = read_cstring(t + comm_off, 16)
    if not pid or not comm then ferr = e or e2; return false end
    count = count + 1
  end)
  if not n then return nil, err end
  if ferr then return nil, ferr end
  return count
end

local seen, rounds = {}, 0
local function round()
  rounds = rounds + 1
  flush_cache() -- the guest ran since the last round
  local names, err = modules_now()
  if names then
    local now = {}
    for _, n in ipairs(names) do
      now[n] = true
      if not seen[n] then print("+ " .. n) end
    end
    for n in pairs(seen) do
      if not now[n] then print("- " .. n) end
    end
    seen = now
  else
    fail("modules", err)
  end
  local n, terr = tasks_now()
  if not n then fail("tasks", terr) end
  return names
end

while not exists(stop) do
  round()
  sleep(interval)
end
local names = round()
if names then
  for _, n in ipairs(names) do print("FINAL " .. n) end
end
print("ROUNDS " .. rounds .. " ERRORS " .. errors)
