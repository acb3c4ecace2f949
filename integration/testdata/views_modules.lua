-- Modules through typed views and list(): name, size, refcount and text
-- address, as /proc/modules prints them (6.1: core_layout/init_layout;
-- 6.4+: mem[], summed over every mod_mem_type).
local function size_base(m)
  if has_member("module", "mem") then
    local total = 0
    for i = 0, #m.mem - 1 do total = total + m.mem[i].size end
    return total, m.mem[enum("mod_mem_type", "MOD_TEXT")].base
  end
  return m.core_layout.size + m.init_layout.size, m.core_layout.base
end
local w = list(symbol("modules"), "module", "list")
for m in w do
  local size, base = size_base(m)
  emit{name = m.name, size = size, refcount = m.refcnt.counter - 1, address = base:hex()}
end
assert(not w:err(), w:err())
