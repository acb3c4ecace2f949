-- netstat.lua: the guest's TCP and UDP sockets, IPv4 and IPv6, as its
-- /proc/net/{tcp,tcp6,udp,udp6} and `ss -tuan` show them, read from the
-- kernel's hash tables (TCP's listening and established tables, UDP's by
-- port): one record per socket with protocol, state, local and remote
-- address and port, the socket's inode, and the process holding it (pid,
-- comm; absent when no process has it open, as for TIME_WAIT). A walk the
-- guest's links cut short (a fault, a loop) ends in a record {error = why}.
-- usage: xascript scripts/examples/netstat.lua --file DUMP [--json]
--        xascript scripts/examples/netstat.lua --qemu QMP-SOCKET --pause
local net = require("net")
local socks, errs = net.sockets()
local owners = net.socket_owners()
for _, s in ipairs(socks) do
  local o = s.socket and owners[s.socket:key()] or {}
  emit({proto = s.proto, state = s.state, ["local"] = s.local_addr, lport = s.local_port,
        remote = s.remote_addr, rport = s.remote_port, inode = s.inode, pid = o.pid, comm = o.comm},
       {"proto", "state", "local", "lport", "remote", "rport", "inode", "pid", "comm"})
end
for _, e in ipairs(errs) do emit({error = e}) end -- what was left out, and why
