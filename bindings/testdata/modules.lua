-- Program 5.1 on the synthetic guest: names in list order.
local name_off = offsetof("module", "name")
local n = assert(walk_list(symbol("modules"), "module", "list", function(m)
  print(read_cstring(m + name_off, 56))
end))
print("count", n)
-- early stop
print("stopped after", walk_list(symbol("modules"), "module", "list", function(m) return false end))
-- raw list_head walk with struct nil: fn gets the node
walk_list(symbol("modules"), nil, nil, function(node)
  print("node", node == container_of(node, "module", "list") + offsetof("module", "list"))
  return false
end)
-- limit
print(walk_list(symbol("modules"), "module", "list", function() end, 2))
