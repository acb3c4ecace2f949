-- Counts the modules whose struct module is in physical memory above 4 GiB.
local n, above = 0, 0
local four_gib = addr("0x100000000")
assert(walk_list(assert(symbol("modules")), "module", "list", function(m)
  n = n + 1
  if assert(translate(m)) >= four_gib then above = above + 1 end
end))
print(n, above)
