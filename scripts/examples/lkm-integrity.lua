-- lkm-integrity.lua [interval [rounds]]: fingerprint each loaded module's
-- code and re-check it every `interval` seconds (default 1) for `rounds`
-- rounds (default: until interrupted; on a dump, one pass). The first time a
-- module is seen: event=hash with its text's address, size and SHA-256;
-- then event=changed with the byte range that differs ([from, to), guest
-- addresses), e.g. a hook patched into a function.
--
-- Where the text is: up to 6.3 struct module has core_layout (base, with the
-- text first, text_size bytes of it); from 6.4, mem[MOD_TEXT] (base, size).
local linux = require("linux")
local interval = tonumber(arg[1]) or 1
local rounds = tonumber(arg[2]) or (linux.is_live() and math.huge or 1)
local function text(m)
  if has_member("module", "core_layout") then return m.core_layout.base, m.core_layout.text_size end
  local mem = m.mem[enum("mod_mem_type", "MOD_TEXT")]
  return mem.base, mem.size
end

local seen = {}
for round = 1, rounds do
  for _, mod in ipairs(with_paused(linux.modules)) do
    local base, size = text(view("module", mod.addr))
    local code = assert(read_bytes(base, size))
    local old, sum = seen[mod.name], sha256(code)
    if not old then
      emit({ event = "hash", module = mod.name, base = base, size = size, sha256 = sum }, { "event", "module" })
    elseif old.sum ~= sum or old.base ~= base then
      local i, j = 1, #code
      while i <= j and code:byte(i) == old.code:byte(i) do i = i + 1 end
      while j >= i and code:byte(j) == old.code:byte(j) do j = j - 1 end
      emit({ event = "changed", module = mod.name, from = base + (i - 1), to = base + j, sha256 = sum }, { "event", "module" })
    end
    seen[mod.name] = { code = code, sum = sum, base = base }
  end
  if round < rounds then sleep(interval) end
end
