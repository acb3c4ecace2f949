-- Errors of views on a real kernel: an unknown member raises naming the
-- struct and near names; the idle task (a kernel thread) has no mm, so
-- following init_task.mm is nil, err naming the member; a list walked
-- from one of its entries comes back to it.
local init = symbol("init_task"):as("task_struct")
local ok, msg = pcall(function() return init.comn end)
emit{what = "unknown", ok = ok, msg = msg}
local pgd, err = field(init, "mm.pgd")
emit{what = "null", value = tostring(pgd), msg = err, mm = tostring(init.mm)}
-- A list whose head is a module's own list_head sees every other module
-- and then the real head, which is not a module: its name is whatever the
-- bytes before `modules` hold, but the walk ends at the start again.
local first
for m in list(symbol("modules"), "module", "list") do first = first or m break end
local n, w = 0, list(first.list, "module", "list")
for m in w do n = n + 1 end
emit{what = "from_entry", n = n, err = w:err()}
