-- Tasks by two routes: the init_task.tasks list, and the pid IDR of the
-- initial pid namespace with each struct pid's hlist of tasks.
local init = symbol("init_task"):as("task_struct")
emit{route = "list", pid = init.pid, comm = init.comm}
local w = list(init.tasks, "task_struct", "tasks")
for t in w do emit{route = "list", pid = t.pid, comm = t.comm} end
assert(not w:err(), w:err())

local PID = enum("pid_type", "PIDTYPE_PID")
local ns = symbol("init_pid_ns"):as("pid_namespace")
local ids = idr(ns.idr, "pid")
for nr, p in ids do
  local h = hlist(p.tasks[PID], "task_struct", "pid_links[" .. PID .. "]")
  for t in h do
    emit{route = "idr", pid = t.pid, comm = t.comm, nr = nr, upid = p.numbers[0].nr}
  end
  assert(not h:err(), h:err())
end
assert(not ids:err(), ids:err())
