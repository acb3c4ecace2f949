-- Every user process's mappings by two routes: maple() over its mm->mm_mt
-- as vm_area_structs, and p:vmas() of task:space(); and task:space() next to
-- process_of(task).
local init = symbol("init_task"):as("task_struct")
local tasks = list(init.tasks, "task_struct", "tasks")
for t in tasks do
  local s, serr = t:space()
  local p, perr = process_of(addr(t))
  emit{route = "space", pid = t.pid, user = t.mm ~= nil,
       s_pid = s and s.pid, s_mm = s and s.mm, s_pgd = s and s.pgd, s_root = s and s.root, s_err = serr,
       p_pid = p and p.pid, p_mm = p and p.mm, p_pgd = p and p.pgd, p_root = p and p.root, p_err = perr}
  if t.mm ~= nil and s then
    local w = maple(t.mm.mm_mt, "vm_area_struct")
    for vma, first, last in w do
      emit{route = "maple", pid = t.pid, start = vma.vm_start, stop = vma.vm_end, first = first, last = last}
    end
    emit{route = "maple_end", pid = t.pid, err = w:err(), count = w:count()}
    for _, v in ipairs(assert(s:vmas())) do
      emit{route = "vmas", pid = t.pid, start = v.start, stop = v.stop}
    end
  end
end
assert(not tasks:err(), tasks:err())
