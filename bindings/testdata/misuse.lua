-- Misuse raises errors that carry this file's line.
local function try(f) local ok, err = pcall(f); print(ok, err) end
try(function() return read_u32() end)
try(function() return read_u32({}) end)
try(function() return offsetof("module", "no_member") end)
try(function() return sizeof("no_type") end)
try(function() return read_cstring(0, -1) end)
try(function() return read_bytes(0, 1e9) end)
try(function() return walk_list(symbol("modules"), "module", "list", function() error("inside fn") end) end)
print(has_member("module", "name"), has_member("module", "nope"))
print(sizeof("module"), offsetof("struct module", "list"))
