-- disk-ids.lua: XenAccess's disk intrusion detector. Reports any change to
-- system binaries, kernel modules and cron jobs on the guest's disk, with
-- the file's size and mode, from the writes alone (a rootkit in the guest
-- cannot hide them).
--   xascript disk-ids.lua --disk IMG --nbd SOCKET
local watched = {
  "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/etc/crontab", "/etc/cron.d", "/etc/cron.hourly",
  "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/var/spool/cron",
}
local function report(ev)
  if ev.error then
    print(string.format("%s %s: %s", ev.op, ev.path, ev.error))
    return
  end
  local from = ev.old_path and (" (was " .. ev.old_path .. ")") or ""
  local link = ev.target and (" -> " .. ev.target) or ""
  print(string.format("%s %s%s%s size=%d mode=%04o uid=%d type=%s", ev.op, ev.path, link, from,
    ev.size, ev.mode, ev.uid, ev.type))
end
for _, path in ipairs(watched) do
  on_disk_event(path, report, { files = true, recursive = true, max_depth = 4 })
end
on_disk_event("/lib/modules", report, { files = true, recursive = true })
