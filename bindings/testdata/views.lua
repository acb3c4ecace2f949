-- Typed views and container iterators on the synthetic guest (views
-- fixture types: struct module, knode, xarray, idr).
local w = list(symbol("modules"), "module", "list")
local first
for m in w do
  first = first or m
  print(m.name, m.list.next == m.list.next, tostring(m):match("^%(struct module %*%)0x") ~= nil)
end
print("list err", w:err(), "count", w:count())

local m = first
print("state", m.state, m.state == enum("module_state", "MODULE_STATE_COMING"), enum(nil, "MOD_DATA"))
print("refcnt", m.refcnt.counter, "mem", #m.mem, m.mem[0].size, m.mem[1].size, m.mem[1].base)
print("bits", m.small, m.neg, m.wide)
print("core", m.core, is_address(m.core), "delta", m.delta, "live", m.live, "flags", m.flags)
print("tag", m.tag, read_cstring(m.tag))
print("parent", m.parent.name, m.parent.parent, m.parent.refcnt.counter)
print("sizeof", sizeof(m), sizeof(m.mem[0]), "offsetof", offsetof(m, "refcnt"), offsetof(m, "mem[1].size"))
print("addr", addr(m) == m, m + 0 == m, addr(m.list) - addr(m), m.list.next - 8 == addr(m.list.next) - 8)
print("as", symbol("modules"):as("list_head").next == m.list)
print("field", field(m, "parent.name"), field(m, "mem[1].size"))
print("field NULL", field(m, "parent.parent.name"))
print("field NULL end", field(m.parent, "parent"))
print("view NULL", view("module", 0))
print("view unmapped", view("module", addr("0xffff888000999000")))

-- Script bugs raise, naming the struct and near names.
print(pcall(function() return m.nmae end))
print(pcall(function() return m.mem[2] end))
print(pcall(function() return view("no_such_struct", m) end))
print(pcall(function() return enum("module_state", "NOPE") end))
print(pcall(function() m.name = "x" end))
print(pcall(offsetof, m, "small"))

-- Cycles and faults end a walk, and err says why.
for _, head in ipairs({"cyclic", "broken"}) do
  local n, walk = 0, list(symbol(head))
  for _ in walk do n = n + 1 end
  print(head, n, walk:err())
end
local lw = list(symbol("modules"), "module", "list", 2)
for _ in lw do end
print("limit", lw:count(), lw:err())

-- rbtree in order, hlist in chain order, hlist cycle, IDR in id order.
local keys = {}
for k in rbtree(symbol("ktree"), "knode", "rb") do keys[#keys + 1] = k.key end
print("rbtree", table.concat(keys, " "))
keys = {}
for k in hlist(symbol("khash"), "knode", "h") do keys[#keys + 1] = k.key end
print("hlist", table.concat(keys, " "))
local hw = hlist(symbol("khash_loop"))
for _ in hw do end
print("hlist loop", hw:count(), hw:err())
for id, k in idr(symbol("kidr"), "knode") do print("idr", id, k.key) end
for i, e in xarray(symbol("kidr")) do print("xarray", i, e) end

-- A maple tree in index order with each entry's range; a node that is its
-- own child, a node of no known type, too many entries: errors, not hangs.
local mw = maple(symbol("kmaple"), "knode")
for k, first, last in mw do print("maple", k.key, first, last) end
print("maple err", mw:err(), "count", mw:count())
for e, first, last in maple(symbol("kmaple")) do print("maple addr", e, first, last) end
for _, tree in ipairs({"kmaple_loop", "kmaple_bogus"}) do
  local n, walk = 0, maple(symbol(tree), "knode")
  for k in walk do n = n + 1 end
  print(tree, n, walk:err())
end
local ml = maple(symbol("kmaple"), nil, 2)
for _ in ml do end
print("maple limit", ml:count(), ml:err())
print(pcall(maple, symbol("kmaple"), "no_such_struct"))

-- task:space() is process_of(task); other structs have no such member.
local task = symbol("ktask"):as("task_struct")
print("space", task.pid, type(task.space))
print(pcall(task.space, task))
print(pcall(function() return first.space end))
