-- flip-byte.lua ADDR: invert every bit of the byte at ADDR (a second run
-- puts it back), with the guest paused; emits its old and new value
-- (TestGuestLiveQEMUTamper; run with --allow-write).
local a = addr(assert(arg[1], "usage: flip-byte.lua ADDR"))
with_paused(function()
  local old = assert(read_u8(a))
  assert(write_u8(a, bit.bxor(old, 0xff)))
  emit({ address = a, old = old, new = assert(read_u8(a)) })
end)
