-- symbols.lua ADDRS NAMES: names each address of the file ADDRS (symbol_at),
-- looks up each name of the file NAMES (symbol), and reads each online CPU's
-- runqueue through percpu, for symbols_test.go to compare with the guest's
-- own /proc/kallsyms and /proc/zoneinfo.
local addrs, names = ...
for a in io.lines(addrs) do
  local s, info = symbol_at(a)
  if s then
    print(table.concat({"at", a, s, info.name, info.module or "-", info.type or "-", tostring(info.text),
                        tostring(info.address), tostring(info.offset)}, "\t"))
  else
    print("at\t" .. a .. "\tERR\t" .. info)
  end
end
for name in io.lines(names) do
  print("sym\t" .. name .. "\t" .. tostring((symbol(name))))
end
local rq_cpu = offsetof("rq", "cpu")
for _, cpu in ipairs(assert(cpus())) do
  print("cpu\t" .. cpu .. "\t" .. assert(read_u32(assert(percpu("runqueues", cpu)) + rq_cpu)))
end
