-- module-list.lua unlink NAME | relink NODE: take module NAME off the
-- `modules` list as the kernel's list_del does (prev->next = next,
-- next->prev = prev; the node keeps its own pointers), as a rootkit hiding
-- from lsmod does; or put that node (its list_head's address, which unlink
-- emits) back between the neighbours it still points to. With the guest
-- paused (TestGuestLiveQEMUTamper; run with --allow-write).
local op, what = arg[1], arg[2]
assert((op == "unlink" or op == "relink") and what, "usage: module-list.lua unlink NAME | relink NODE")
with_paused(function()
  local node
  if op == "unlink" then
    for m in list(symbol("modules"), "module", "list") do
      if m.name == what then node = addr(m) + offsetof("module", "list") break end
    end
    assert(node, "no module " .. what .. " on the list")
  else
    node = addr(what)
  end
  local next, prev = assert(read_addr(node)), assert(read_addr(node + 8))
  if op == "unlink" then
    assert(read_addr(prev) == node and read_addr(next + 8) == node, "the neighbours do not point to the node")
    assert(write_u64(prev, next))
    assert(write_u64(next + 8, prev))
  else
    assert(read_addr(prev) == next and read_addr(next + 8) == prev, "the neighbours are not linked to each other")
    assert(write_u64(prev, node))
    assert(write_u64(next + 8, node))
  end
  emit({ op = op, node = node, prev = prev, next = next })
end)
