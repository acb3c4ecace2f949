-- sha256, crc32 and the bit library, as a monitor uses them.
print(sha256(""))
print(sha256("abc"))
print(sha256("a\0b"), sha256("a\0c") ~= sha256("a\0b"))
print(string.format("%08x", crc32("123456789")), crc32("The quick brown fox jumps over the lazy dog"))

-- Page-table entry arithmetic: the frame of an entry with NX (bit 63) set.
local pte = addr("0x8000000012345067")
print(bit.band(pte, "0x000ffffffffff000"), bit.test(pte, bit.shl(1, 63)), bit.test(pte, 2))
print(bit.band(pte, bit.bnot(0xfff)), bit.band(0x1067, -4096), bit.bor(0x10, 0x1, 0x100))
print(bit.bnot(0), bit.bxor(addr(1), 1), bit.shr(-1, 12), bit.arshift(-4096, 4))
print(bit.shl(1, 52), bit.shl(1, 53), bit.shl(1, 64), bit.shr(pte, 64), bit.arshift(pte, 200))
print(type(bit.band(7, 3)), type(bit.band(addr(7), 3)), is_address(bit.shl(1, 60)))

-- A table fingerprint and its change.
local table_bytes = string.rep("\0\16\32\48", 64)
local before = sha256(table_bytes)
print(before == sha256(table_bytes), before == sha256(table_bytes:sub(1, -2) .. "\1"))

print(pcall(bit.shl, 1, -1))
print(pcall(bit.band, 0.5))
print(pcall(symbol_at, addr("0xffffffff81000000")))
