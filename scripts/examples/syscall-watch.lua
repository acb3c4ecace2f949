-- syscall-watch.lua [interval [rounds]]: snapshot the system-call table and
-- report every entry that changes, polling every `interval` seconds (default
-- 1) for `rounds` rounds (default: until interrupted; a dump never changes,
-- so there one pass). The first pass reports every entry (event=entry); later
-- ones each change (event=changed), naming what the entry points to now with
-- symbol_at, or "outside kernel text" (a hook in a hidden module, say).
--
-- The table's size: BTF has no variables, so sys_call_table's type is not in
-- the type graph and NR_syscalls is a macro. The kernel's own symbol table
-- bounds it instead: the table spans sys_call_table up to the next symbol,
-- and the kernel fills every slot below NR_syscalls with a function
-- (sys_ni_syscall for unused numbers), so the NULL slots at the end are the
-- linker's alignment padding, not system calls.
local linux = require("linux")
local interval = tonumber(arg[1]) or 1
local rounds = tonumber(arg[2]) or (linux.is_live() and math.huge or 1)
local base = assert(symbol("sys_call_table"))
local function in_table(i) local _, s = symbol_at(base + 8 * i) return s and s.name == "sys_call_table" end
local n = 0
while n < 4096 and in_table(n) do n = n + 1 end -- bounded: the symbols come from the guest
while n > 0 and assert(read_addr(base + 8 * (n - 1))) == addr(0) do n = n - 1 end

local seen = {}
for round = 1, rounds do
  with_paused(function()
    for nr = 0, n - 1 do
      local fn = assert(read_addr(base + 8 * nr))
      if seen[nr] ~= fn then
        local name, info = symbol_at(fn)
        if not (info and info.text) then name = "outside kernel text" end
        emit({ event = seen[nr] and "changed" or "entry", nr = nr, count = n, address = fn, symbol = name },
             { "event", "nr", "count" })
        seen[nr] = fn
      end
    end
  end)
  if round < rounds then sleep(interval) end
end
