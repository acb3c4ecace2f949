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
  local name_off = offsetof("module", "name")
  local head = assert(symbol("modules"))
  assert(walk_list(head, "module", "list", function(m)
    out[#out + 1] = {addr = m, name = assert(read_cstring(m + name_off, 56))}
  end))
  return out
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

return linux
