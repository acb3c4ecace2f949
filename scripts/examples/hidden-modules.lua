-- hidden-modules.lua: the kernel modules in memory, found three ways, one
-- record per module: name, address, and whether it is on the `modules` list
-- (what /proc/modules and lsmod read), in the mod_tree (the latch tree of
-- module memory the kernel looks addresses up in: backtraces, kprobes) and
-- among the kobjects of module_kset (/sys/module). A rootkit that hides
-- from lsmod by unlinking itself from the list stays in the other two:
-- list=false hidden=true. Modules in list order, then the others.
local seen, order = {}, {}
local function add(route, m)
  local a = addr(m):hex() -- a string: address values are not equal as table keys
  if not seen[a] then
    seen[a] = { name = m.name, address = addr(m), list = false, mod_tree = false, kset = false }
    order[#order + 1] = a
  end
  seen[a][route] = true
end
local function walk(route, w, mod_of)
  for e in w do local m = mod_of(e) if m then add(route, m) end end
  assert(not w:err(), w:err())
end
walk("list", list(symbol("modules"), "module", "list"), function(m) return m end)
-- Each node is one block of a module's memory (text, data, ...): n.mod is its module.
local tree = symbol("mod_tree"):as("mod_tree_root").root.tree[0]
walk("mod_tree", rbtree(tree, "mod_tree_node", "node.node[0]"), function(n) return n.mod end)
-- Built-in modules have kobjects too (for their parameters), without a struct module.
local kset = view("kset", assert(read_addr(assert(symbol("module_kset")))))
walk("kset", list(kset.list, "module_kobject", "kobj.entry"), function(k) return k.mod end)
for _, a in ipairs(order) do
  seen[a].hidden = not seen[a].list
  emit(seen[a], { "name", "address", "hidden", "list", "mod_tree", "kset" })
end
