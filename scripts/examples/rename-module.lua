-- rename-module.lua OLD NEW: renames the loaded kernel module OLD to NEW in
-- guest memory (the name in its struct module), as a rootkit that hides
-- behind a harmless name would; the guest's own /proc/modules shows NEW from
-- then on. For testing monitors against a tampered guest: it writes, so it
-- needs --allow-write. One record: the module's address, old and new name.
-- usage: xascript scripts/examples/rename-module.lua --qemu SOCK --allow-write -- OLD NEW
local linux = require("linux")
local old, new = arg[1], arg[2]
-- MODULE_NAME_LEN is 64 - sizeof(long): 56 bytes with the NUL on 64-bit kernels.
assert(old and new and #new > 0 and #new < 56, "usage: rename-module.lua OLD NEW (NEW: 1 to 55 bytes)")
local name_off = offsetof("module", "name")
with_paused(function()
  for _, m in ipairs(linux.modules()) do
    if m.name == old then
      -- The whole field: the new name, then NULs over the rest of the old one.
      assert(write_bytes(m.addr + name_off, new .. string.rep("\0", 56 - #new)))
      emit({ module = m.addr, old = old, new = assert(read_cstring(m.addr + name_off, 56)) }, { "module", "old", "new" })
      return
    end
  end
  error("no loaded module named " .. old, 0)
end)
