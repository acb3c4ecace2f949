-- @module net
-- The guest's TCP and UDP sockets, read from the kernel's own hash tables as
-- /proc/net/tcp, tcp6, udp and udp6 (and `ss -tuan`) list them: TCP's
-- listening table (`lhash2`) and established table (`ehash`, which also
-- holds TIME_WAIT and SYN_RECV entries) of `tcp_hashinfo`, and `udp_table`
-- by local port. Kernels from 6.1 may give a network namespace its own
-- tables; the init namespace's (`init_net`) are read, reached through it
-- where the kernel has the pointer. Every bucket count comes from the guest
-- and is capped, every chain walk is bounded and cycle-safe.
--
-- ```lua
-- local net = require("net")
-- local socks, errs = net.sockets()
-- for _, s in ipairs(socks) do print(s.proto, s.state, s.local_addr, s.local_port) end
-- ```

local linux = require("linux")

local net = {}

net.MAX_BUCKETS = 1048576 -- buckets read per hash table
net.MAX_CHAIN = 100000    -- sockets walked per bucket

-- TCP states (include/net/tcp_states.h), by number.
net.TCP_STATES = {"ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
                  "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}
local TIME_WAIT, NEW_SYN_RECV, SYN_RECV = 6, 12, 3
local AF_INET, AF_INET6 = 2, 10

-- ntohs(v) swaps the bytes of a 16-bit value read from a big-endian
-- (network order) field, such as skc_dport.
function net.ntohs(v)
  return (v % 256) * 256 + math.floor(v / 256) % 256
end

-- ip4(bytes) formats 4 bytes in network order as dotted decimal.
function net.ip4(b)
  return string.format("%d.%d.%d.%d", b:byte(1, 4))
end

-- ip6(bytes) formats 16 bytes in network order as RFC 5952 text: lower
-- case, the longest run of two or more zero groups as "::", an IPv4-mapped
-- address as ::ffff:a.b.c.d.
function net.ip6(b)
  if b:sub(1, 12) == string.rep("\0", 10) .. "\255\255" then return "::ffff:" .. net.ip4(b:sub(13, 16)) end
  local g, best, blen, run = {}, 0, 1, 0
  for i = 1, 8 do
    g[i] = b:byte(2 * i - 1) * 256 + b:byte(2 * i)
    run = g[i] == 0 and run + 1 or 0
    if run > blen then best, blen = i - run + 1, run end
  end
  local parts = {}
  for i = 1, 8 do parts[i] = string.format("%x", g[i]) end
  if best == 0 then return table.concat(parts, ":") end
  -- Not table.concat(t, sep, i, j) with i > j: gopher-lua gives t[j], not "".
  local head, tail = {}, {}
  for i = 1, best - 1 do head[#head + 1] = parts[i] end
  for i = best + blen, 8 do tail[#tail + 1] = parts[i] end
  return table.concat(head, ":") .. "::" .. table.concat(tail, ":")
end

-- tables() finds the hash tables of the init network namespace: returns
-- the inet_hashinfo view of TCP and the udp_table view of UDP.
function net.tables()
  local ipv4 = assert(symbol("init_net")):as("net").ipv4
  local tcp, udp
  if has_member("netns_ipv4", "tcp_death_row") and has_member("inet_timewait_death_row", "hashinfo") then
    tcp = assert(field(ipv4, "tcp_death_row.hashinfo"))
  else
    tcp = assert(symbol("tcp_hashinfo")):as("inet_hashinfo")
  end
  if has_member("netns_ipv4", "udp_table") then
    udp = assert(field(ipv4, "udp_table"))
  else
    udp = assert(symbol("udp_table")):as("udp_table")
  end
  return tcp, udp
end

-- buckets(base, n, size, off, nulls, fn, errs) calls fn(head) for every
-- non-empty list head of an array of n buckets of size bytes (head at off
-- in each), read at once; an empty head is NULL, or for hlist_nulls an odd
-- marker. A bucket count above MAX_BUCKETS is an error in errs.
local function buckets(base, n, size, off, nulls, fn, errs)
  if not base then errs[#errs + 1] = "a hash table pointer is NULL or unreadable" return end
  if n > net.MAX_BUCKETS then
    errs[#errs + 1] = string.format("%s: %d buckets, more than MAX_BUCKETS", tostring(base), n)
    n = net.MAX_BUCKETS
  end
  local psize = sizeof("hlist_head")
  local raw, err = read_bytes(base, n * size)
  if not raw then errs[#errs + 1] = err return end
  local zero = string.rep("\0", psize)
  for i = 0, n - 1 do
    local p = raw:sub(i * size + off + 1, i * size + off + psize)
    if p ~= zero and not (nulls and p:byte(1) % 2 == 1) then fn(addr(base) + (i * size + off)) end
  end
end

local function walk_errs(w, errs)
  local e = w:err()
  if e then errs[#errs + 1] = e end
end

-- record(sc, proto) makes the record of the sock_common view sc.
local function record(sc, proto)
  local fam, st = sc.skc_family, sc.skc_state
  local r = {sock = addr(sc), family = fam, local_port = sc.skc_num, remote_port = net.ntohs(sc.skc_dport)}
  if fam == AF_INET6 then
    r.proto = proto .. "6"
    r.local_addr = net.ip6(assert(read_bytes(sc.skc_v6_rcv_saddr, 16)))
    r.remote_addr = net.ip6(assert(read_bytes(sc.skc_v6_daddr, 16)))
  else
    r.proto = proto
    r.local_addr = net.ip4(assert(read_bytes(addr(sc) + offsetof("sock_common", "skc_rcv_saddr"), 4)))
    r.remote_addr = net.ip4(assert(read_bytes(addr(sc) + offsetof("sock_common", "skc_daddr"), 4)))
  end
  -- /proc/net/tcp shows a TIME_WAIT entry's substate and a request sock
  -- as SYN_RECV; neither has a socket (inode 0).
  r.inode = 0
  if proto == "tcp" and st == TIME_WAIT then
    st = view("inet_timewait_sock", sc).tw_substate
  elseif proto == "tcp" and st == NEW_SYN_RECV then
    st = SYN_RECV
  else
    local so = view("sock", sc).sk_socket
    if so then
      r.socket = addr(so)
      local ino = field(container_of(so, "socket_alloc", "socket"):as("socket_alloc"), "vfs_inode.i_ino")
      r.inode = ino and addr(ino):tonumber() or 0
    end
  end
  r.st, r.state = st, net.TCP_STATES[st] or tostring(st)
  return r
end

-- sockets() lists the TCP and UDP sockets (IPv4, and IPv6 on a kernel with
-- it) of the init namespace's tables: TCP listeners, then the established
-- table, then UDP, each bucket in order. Each is {proto ("tcp", "tcp6",
-- "udp", "udp6"), state (net.TCP_STATES' name; UDP: CLOSE unconnected,
-- ESTABLISHED connected), st (its number, as /proc/net/* prints it in hex),
-- local_addr, local_port, remote_addr, remote_port (text and numbers in host
-- order), inode (the socket's inode number, 0 for TIME_WAIT and request
-- socks), sock (the struct sock), socket (its struct socket, when it has
-- one), family}. The second result lists what ended a walk early (a fault
-- or corrupt links, naming the address) or left a socket out (one whose
-- fields could not be read): the sockets it did reach are in the first.
function net.sockets()
  local out, errs = {}, {}
  local tcp, udp = net.tables()
  local function chain(kind, proto)
    return function(head)
      local w = kind(head, "sock_common", kind == hlist and "skc_node" or "skc_nulls_node", net.MAX_CHAIN)
      for sc in w do
        -- A socket whose fields fault (freed as we look, or corrupt) is an
        -- error of its own; the walk goes on.
        local ok, r = pcall(record, sc, proto)
        if ok then out[#out + 1] = r else errs[#errs + 1] = tostring(sc) .. ": " .. tostring(r) end
      end
      walk_errs(w, errs)
    end
  end
  buckets(tcp.lhash2, tcp.lhash2_mask + 1, sizeof("inet_listen_hashbucket"),
          offsetof("inet_listen_hashbucket", "nulls_head"), true, chain(hlist_nulls, "tcp"), errs)
  buckets(tcp.ehash, tcp.ehash_mask + 1, sizeof("inet_ehash_bucket"),
          offsetof("inet_ehash_bucket", "chain"), true, chain(hlist_nulls, "tcp"), errs)
  buckets(udp.hash, udp.mask + 1, sizeof("udp_hslot"), offsetof("udp_hslot", "head"), false,
          chain(hlist, "udp"), errs)
  return out, errs
end

-- socket_owners() maps each open socket to the first process (in task-list
-- order) that holds a descriptor of it: keyed by the struct socket's
-- address (a sockets() record's socket:key()), {pid, comm, fd}. A file is a
-- socket when its f_op is socket_file_ops; its private_data is the socket.
-- Tasks whose files cannot be read are passed over.
function net.socket_owners()
  local ops = assert(symbol("socket_file_ops"))
  local owners = {}
  for _, t in ipairs(linux.tasks()) do
    for _, f in ipairs(linux.task_files(t.addr) or {}) do
      local file = view("file", f.file)
      if file and file.f_op and addr(file.f_op) == ops then
        local k = file.private_data:key()
        owners[k] = owners[k] or {pid = t.pid, comm = t.comm, fd = f.fd}
      end
    end
  end
  return owners
end

return net
