-- disk-ids.lua: XenAccess's disk intrusion detector. Reports any change to
-- system binaries, kernel modules and cron jobs on the guest's disk, with
-- the file's size and mode, from the writes alone (a rootkit in the guest
-- cannot hide them).
--   xascript disk-ids.lua --disk IMG --nbd SOCKET
local watched = {
  "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/etc/crontab", "/etc/cron.d", "/etc/cron.hourly",
  "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/var/spool/cron",
}
-- One record per change: op and path first, then what is known of the file
-- (size, mode as octal text, uid, type; target for a symlink, old_path for a
-- rename) or the error that kept it from being read.
local function report(ev)
  emit({
    op = ev.op, path = ev.path, target = ev.target, old_path = ev.old_path, error = ev.error,
    size = ev.size, mode = ev.mode and string.format("%04o", ev.mode), uid = ev.uid, type = ev.type,
  }, { "op", "path" })
end
for _, path in ipairs(watched) do
  on_disk_event(path, report, { files = true, recursive = true, max_depth = 4 })
end
on_disk_event("/lib/modules", report, { files = true, recursive = true })
