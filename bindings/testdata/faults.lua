-- Guest faults come back as nil, err naming the address.
print(read_u32(addr("0xffff888000100000")))
print(read_u8_pa(0x100000))
print(symbol("no_such_symbol"))
print(translate(addr("0xffff888000001000")), translate(0x1000))
-- cyclic list: head -> A -> B -> A ...
print(walk_list(symbol("cyclic"), "module", "list", function(m) end))
-- list whose second node points into unmapped memory
print(walk_list(symbol("broken"), "module", "list", function(m) end))
-- a string that runs up to the end of the last mapped page stops there
print(read_cstring(addr("0xffff888000001ffc"), 100))
print(read_cstring(addr("0xffff888000003ffc"), 4), read_cstring(addr("0xffff888000003ffc"), 5))
print(#read_bytes(addr("0xffff888000001000"), 4096), read_bytes(addr("0xffff888000001ff0"), 32))
