-- The kernel's mod_tree (a latch tree: two rbtrees over the same nodes)
-- walked in order with rbtree(): each node is a mod_tree_node inside a
-- module_layout (6.1) or module_memory (6.4+), keyed by its base address.
local outer = has_member("module", "mem") and "module_memory" or "module_layout"
local root = symbol("mod_tree"):as("mod_tree_root").root
for i = 0, 1 do
  local w = rbtree(root.tree[i], "mod_tree_node", "node.node[" .. i .. "]")
  for n in w do
    local layout = view(outer, n - offsetof(outer, "mtn"))
    emit{tree = i, name = n.mod.name, base = layout.base:hex(), size = layout.size}
  end
  assert(not w:err(), w:err())
end
