-- The rough edges a first user hit (issue 12), each as it behaves now.
local function try(...) print(pcall(...)) end

-- Shifts by 64 or more give 0.
print(addr(1):shl(63), addr(1):shl(64), addr(1):shl(100), addr("0x8000000000000000"):shr(64), addr(2):shr(1))

-- sleep takes 0 to 86400 seconds, nothing else.
try(sleep, 1/0)
try(sleep, 0/0)
try(sleep, -1)
try(sleep, 86401)
try(sleep, "1")
print(sleep(0))

-- Argument errors name the function, also through pcall.
try(read_u32, {})
try(read_cstring, 0, -1)
try(offsetof, "module")
try(function() return read_u32(nil) end)

-- Addresses as table keys: a:key(), and back with addr().
local t = {}
t[addr(1):key()] = "one"
print(t[addr(1):key()], t[(addr(0) + 1):key()], addr(addr(1):key()) == addr(1))

-- string.format knows addresses (and anything with __tostring).
local a = addr("0xffff888003a4b129")
print(string.format("%s|%x|%X|%d|%#x|%20s|%-20s|%022x", a, a, a, a, a, a, a, a))
print(("%x %s"):format(addr(255), addr(255)))
local obj = setmetatable({}, {__tostring = function() return "an object" end})
print(string.format("[%s] [%10s] %d %5.2f %q %%", obj, obj, 42, 1.5, "q"))
print(string.format("%s %s", 1, "extra ignored", "more"))
-- The Lua 5.1 literal trap: above 2^53 a literal is not exact; a string is.
-- (gopher-lua makes a hex literal above 2^63 NaN, which equals nothing.)
print(0xfffffffffffff000 ~= 0xfffffffffffff000, 0x20000000000001 == 0x20000000000000, addr("0xfffffffffffff000"))

-- An argument error inside a callback names the function that raised it,
-- not the binding that called the callback.
try(walk_list, symbol("modules"), "module", "list", function(m) return read_u32({}) end)
try(walk_list, symbol("modules"), "module", "list", function(m) return string.rep() end)
try(with_paused, read_u32, {})
try(with_paused, function() return read_cstring(0, -1) end)
local f = read_u32
try(function() return f({}) end)
