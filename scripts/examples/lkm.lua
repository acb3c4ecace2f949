-- lkm.lua: the loaded kernel modules, in list order (XenAccess Program 5.1).
-- usage: xascript scripts/examples/lkm.lua --file DUMP   (profile flags optional)
local name_off = offsetof("module", "name")
assert(walk_list(assert(symbol("modules")), "module", "list", function(m)
  print(assert(read_cstring(m + name_off, 56)))
end))
