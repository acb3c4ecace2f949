-- hlist_nulls on a real hash table: every bucket of TCP's established
-- hash (tcp_hashinfo.ehash) is an hlist_nulls chain that the kernel ends
-- with the bucket's own index (inet_hashinfo2_init / tcp_init:
-- INIT_HLIST_NULLS_HEAD(&ehash[i].chain, i)).
local h = symbol("tcp_hashinfo"):as("inet_hashinfo")
local n = h.ehash_mask + 1
local size = sizeof("inet_ehash_bucket")
local mismatched, sockets, first_bad = 0, 0, nil
for i = 0, n - 1 do
  local b = view("inet_ehash_bucket", h.ehash + i * size)
  local w = hlist_nulls(b.chain, "sock_common", "skc_nulls_node")
  for sk in w do sockets = sockets + 1 end
  assert(not w:err(), w:err())
  if w:nulls() ~= i then
    mismatched = mismatched + 1
    first_bad = first_bad or i
  end
end
emit{buckets = n, mismatched = mismatched, first_bad = first_bad, sockets = sockets}
