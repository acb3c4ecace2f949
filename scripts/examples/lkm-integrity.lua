-- lkm-integrity.lua [interval [rounds]]: fingerprint each loaded module's
-- code and re-check it every `interval` seconds (default 1) for `rounds`
-- rounds (default: until interrupted; on a dump, one pass). The first time a
-- module is seen (or seen at another address: unloaded and loaded again):
-- event=hash with its text's address, size and SHA-256; then event=changed
-- with the byte range that differs ([from, to), guest addresses), e.g. a
-- hook patched into a function. Each pass reads the list and the text with
-- the guest paused (a module unloaded in between would be freed), and only
-- the modules the kernel has finished loading (MODULE_STATE_LIVE): one being
-- loaded is still being patched (ftrace, jump labels), a false change.
--
-- Text that cannot be read (a forged size or base: at most 16 MiB, read_bytes'
-- limit, is read) is event=unreadable with the error, each pass, and does
-- not end the monitor.
--
-- Where the text is: up to 6.3 struct module has core_layout (base, with the
-- text first, text_size bytes of it); from 6.4, mem[MOD_TEXT] (base, size).
local linux = require("linux")
local interval, rounds, seen = tonumber(arg[1]) or 1, tonumber(arg[2]) or (linux.is_live() and math.huge or 1), {}
local function pass()
  local out, live = {}, enum("module_state", "MODULE_STATE_LIVE")
  for _, mod in ipairs(linux.modules()) do
    local m = view("module", mod.addr)
    if m.state == live then
      local t = has_member("module", "core_layout") and { base = m.core_layout.base, size = m.core_layout.text_size } or m.mem[enum("mod_mem_type", "MOD_TEXT")]
      out[#out + 1] = { name = mod.name, base = t.base, size = t.size, read = { read_bytes(t.base, math.min(t.size, 2^24)) } }
    end
  end
  return out
end

for round = 1, rounds do
  for _, mod in ipairs(with_paused(pass)) do
    local code, base, old, sum = mod.read[1], mod.base, seen[mod.name], mod.read[1] and sha256(mod.read[1])
    if not code then
      emit({ event = "unreadable", module = mod.name, base = base, size = mod.size, error = mod.read[2] }, { "event", "module" })
    elseif not old or old.base ~= base then
      emit({ event = "hash", module = mod.name, base = base, size = mod.size, sha256 = sum }, { "event", "module" })
    elseif old.sum ~= sum then
      local i, j = 1, #code
      while i <= j and code:byte(i) == old.code:byte(i) do i = i + 1 end
      while j >= i and code:byte(j) == old.code:byte(j) do j = j - 1 end
      emit({ event = "changed", module = mod.name, from = base + (i - 1), to = base + j, sha256 = sum }, { "event", "module" })
    end
    mod.code, mod.sum, seen[mod.name] = code, sum, code and mod or old
  end
  if round < rounds then sleep(interval) end
end
