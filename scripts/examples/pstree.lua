-- pstree.lua: the process tree (thread-group leaders from the task list,
-- each under its parent, depth-first by pid), one record per process: pid,
-- ppid, uid, state (the letter /proc/PID/stat gives), threads, comm, depth.
-- A process whose parent chain does not lead to pid 0 is not shown (see
-- psxview.lua for tasks that hide).
local init = symbol("init_task"):as("task_struct")
-- fs/proc/array.c task_state(): the highest bit of (state | exit_state) &
-- TASK_REPORT, "I" for TASK_IDLE (TASK_UNINTERRUPTIBLE | TASK_NOLOAD).
local function state(t)
  local s = bit.bor(has_member("task_struct", "__state") and t.__state or t.state, t.exit_state)
  if s == 0x402 then return "I" end
  local letter = "R"
  for i, l in ipairs({ "S", "D", "T", "t", "X", "Z", "P" }) do
    if bit.test(s, bit.shl(1, i - 1)) then letter = l end
  end
  return letter
end
-- kids[ppid]: the processes whose parent is ppid (a list made on first use).
local kids = setmetatable({}, { __index = function(k, p) rawset(k, p, {}) return k[p] end })
local w = list(init.tasks, "task_struct", "tasks")
for t in w do table.insert(kids[t.real_parent.tgid], t) end
assert(not w:err(), w:err())
local shown = {} -- each pid once: forged parent links may make a cycle
local function show(pid, depth)
  shown[pid] = true
  table.sort(kids[pid], function(a, b) return a.pid < b.pid end)
  for _, t in ipairs(kids[pid]) do
    emit({ pid = t.pid, ppid = pid, uid = t.cred.uid.val, state = state(t), threads = t.signal.nr_threads,
           comm = t.comm, depth = depth }, { "pid", "ppid", "uid", "state", "threads", "comm" })
    if not shown[t.pid] then show(t.pid, depth + 1) end
  end
end
show(0, 0)
