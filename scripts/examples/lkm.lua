-- lkm.lua: the loaded kernel modules, in list order (XenAccess Program 5.1),
-- one record per module: `name=ext4` (with --json: {"name":"ext4"}), after
-- the guest's name.
-- usage: xascript scripts/examples/lkm.lua --file DUMP [--json]   (profile flags optional)
local name_off = offsetof("module", "name")
assert(walk_list(assert(symbol("modules")), "module", "list", function(m)
  emit{ name = assert(read_cstring(m + name_off, 56)) }
end))
