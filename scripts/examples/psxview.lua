-- psxview.lua: cross-view of the processes, as Volatility's psxview: each
-- process (thread-group leader) found by the task list (init_task.tasks)
-- and by the pid IDR of the initial pid namespace (what /proc and kill()
-- look pids up in), one record per pid: pid, comm, list, idr (whether that
-- view has it). A rootkit that unlinks a task from the list to hide it
-- leaves it in the IDR: list=false idr=true. The idle task (pid 0) is on
-- the list only, as it has no struct pid.
local seen = {}
local function add(view, t)
  local s = seen[t.pid] or { pid = t.pid, comm = t.comm, list = false, idr = false }
  s[view], seen[t.pid] = true, s
end
local init = symbol("init_task"):as("task_struct")
add("list", init)
local w = list(init.tasks, "task_struct", "tasks")
for t in w do add("list", t) end
assert(not w:err(), w:err())
local PID = enum("pid_type", "PIDTYPE_PID")
local ids = idr(symbol("init_pid_ns"):as("pid_namespace").idr, "pid")
for _, p in ids do
  local h = hlist(p.tasks[PID], "task_struct", "pid_links[" .. PID .. "]")
  for t in h do if t.pid == t.tgid then add("idr", t) end end
  assert(not h:err(), h:err())
end
assert(not ids:err(), ids:err())
local pids = {}
for pid in pairs(seen) do pids[#pids + 1] = pid end
table.sort(pids)
for _, pid in ipairs(pids) do emit(seen[pid], { "pid", "comm", "list", "idr" }) end
