-- diskwatch.lua [-r] [PATH ...]: report folders and files created, removed
-- and renamed in the guest's watched folders (default /root), from the
-- writes that reach its disk: XenAccess's Program 5.2.
--   xascript diskwatch.lua --disk IMG --nbd SOCKET -- /root
-- -r watches every folder below each PATH too. A new name for a file that
-- already had one prints LINK, a new symlink SYMLINK.
local opts, paths = {}, {}
for _, a in ipairs(arg) do
  if a == "-r" then opts.recursive = true else paths[#paths + 1] = a end
end
if #paths == 0 then paths = { "/root" } end

for _, path in ipairs(paths) do
  on_disk_event(path, function(ev)
    if ev.op == "RENAME" then
      print(ev.op .. ": " .. ev.old_path .. " -> " .. ev.path)
    elseif ev.error then
      print(ev.op .. ": " .. ev.path .. ": " .. ev.error)
    elseif ev.op == "MKFILE" and ev.hardlink then
      print("LINK: " .. ev.path)
    elseif ev.op == "MKFILE" and ev.type == "symlink" then
      print("SYMLINK: " .. ev.path)
    else
      print(ev.op .. ": " .. ev.path)
    end
  end, opts)
end
