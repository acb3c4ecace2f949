-- syscall.lua NR VALUE: set sys_call_table[NR] to VALUE (a kernel symbol's
-- name, or an address "0x..."), with the guest paused; emits the entry's
-- old and new value (TestGuestLiveQEMUTamper; run with --allow-write).
local nr = assert(tonumber(arg[1]), "usage: syscall.lua NR VALUE")
local value = assert(arg[2], "usage: syscall.lua NR VALUE")
value = value:match("^0x") and addr(value) or assert(symbol(value))
local slot = assert(symbol("sys_call_table")) + 8 * nr
with_paused(function()
  local old = assert(read_addr(slot))
  assert(write_u64(slot, value))
  emit({ nr = nr, old = old, new = assert(read_addr(slot)) })
end)
