package integration

import (
	"fmt"
	"math/rand"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/scripts"
)

// procTCPStates names the st column of /proc/net/tcp and udp
// (include/net/tcp_states.h).
var procTCPStates = map[uint64]string{1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
	5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}

// plantSockets (Lua, run with writes allowed before netstat.lua) builds
// five sockets in the printk buffer (__log_buf, which netstat.lua never
// reads) of a writable copy of a dump, field by field at the kernel's own
// offsets, and links each into an empty bucket of the tables it found by
// their symbols (tcp_hashinfo, udp_table: init_net's on these kernels):
//
//   - lhash2[3]: a TCP listener 10.0.2.15:8080 whose struct socket is in a
//     socket_alloc with inode number 4242;
//   - ehash[7]: a TCP6 connection [2001:db8::1]:443 to [fe80::1:0:0:1]:51000,
//     then a TIME_WAIT entry in substate FIN_WAIT2, 192.168.1.2:40000 to
//     93.184.216.34:80;
//   - ehash[9]: a TCP connection 1.2.3.4:1 to 5.6.7.8:2 whose next link
//     points back to itself (a hostile guest's loop);
//   - udp_table.hash[5]: a UDP socket on 0.0.0.0:53.
//
// Remote ports are stored in network order, local ones in host order, as
// the kernel keeps them.
const plantSockets = `
local base = addr(assert(symbol("__log_buf"))) + 0x1000
local function at(o, s, f) return o + offsetof(s, f) end
local function be16(p) return (p % 256) * 256 + math.floor(p / 256) end
local function sock(o, fam, st, lport, src, rport, dst)
  assert(write_bytes(o, string.rep("\0", sizeof("tcp_sock"))))
  assert(write_u16(at(o, "sock_common", "skc_family"), fam))
  assert(write_u8(at(o, "sock_common", "skc_state"), st))
  assert(write_u16(at(o, "sock_common", "skc_num"), lport))
  assert(write_u16(at(o, "sock_common", "skc_dport"), be16(rport)))
  local s, d = "skc_rcv_saddr", "skc_daddr"
  if fam == 10 then s, d = "skc_v6_rcv_saddr", "skc_v6_daddr" end
  assert(write_bytes(at(o, "sock_common", s), src))
  assert(write_bytes(at(o, "sock_common", d), dst))
  return o
end
-- link(head, nodes, off, ["nulls" marker]): head -> nodes[1] -> ... -> end.
local function link(head, nodes, off, marker)
  local first = assert(read_addr(head))
  assert((marker and first:band(1) == addr(1)) or (not marker and first == addr(0)), "bucket not empty: " .. tostring(head))
  assert(write_u64(head, nodes[1] + off))
  for i, n in ipairs(nodes) do
    assert(write_u64(n + off, nodes[i + 1] and nodes[i + 1] + off or addr(marker or 0)))
  end
end
local tcp, udp = assert(symbol("tcp_hashinfo")), assert(symbol("udp_table"))
local nulls = offsetof("sock_common", "skc_nulls_node")

local l = sock(base, 2, 10, 8080, "\10\0\2\15", 0, "\0\0\0\0")
local sa = base + 0x4000
assert(write_bytes(sa, string.rep("\0", sizeof("socket_alloc"))))
assert(write_u64(at(sa, "socket_alloc", "vfs_inode.i_ino"), 4242))
assert(write_u64(at(l, "sock", "sk_socket"), sa + offsetof("socket_alloc", "socket")))
local lhash2 = assert(read_addr(at(tcp, "inet_hashinfo", "lhash2")))
link(lhash2 + 3 * sizeof("inet_listen_hashbucket") + offsetof("inet_listen_hashbucket", "nulls_head"), {l}, nulls, 2 * 3 + 1)

local e = sock(base + 0x5000, 10, 1, 443, "\32\1\13\184" .. string.rep("\0", 11) .. "\1", 51000,
               "\254\128" .. string.rep("\0", 7) .. "\1\0\0\0\0\0\1")
local tw = sock(base + 0x6000, 2, 6, 40000, "\192\168\1\2", 80, "\93\184\216\34")
assert(write_u8(at(tw, "inet_timewait_sock", "tw_substate"), 5))
local ehash = assert(read_addr(at(tcp, "inet_hashinfo", "ehash")))
link(ehash + 7 * sizeof("inet_ehash_bucket"), {e, tw}, nulls, 2 * 7 + 1)

-- A chain that loops back to its own node: listed once, then an error.
local c = sock(base + 0x8000, 2, 1, 1, "\1\2\3\4", 2, "\5\6\7\8")
link(ehash + 9 * sizeof("inet_ehash_bucket"), {c}, nulls, 2 * 9 + 1)
assert(write_u64(c + nulls, c + nulls))

local u = sock(base + 0x7000, 2, 7, 53, "\0\0\0\0", 0, "\0\0\0\0")
local uhash = assert(read_addr(at(udp, "udp_table", "hash")))
link(uhash + 5 * sizeof("udp_hslot") + offsetof("udp_hslot", "head"), {u}, offsetof("sock_common", "skc_node"))
`

// plantedSockets are plantSockets' sockets as netstat.lua should list them:
// "PROTO STATE LOCAL LPORT REMOTE RPORT INODE PID".
var plantedSockets = []string{
	"tcp LISTEN 10.0.2.15 8080 0.0.0.0 0 4242 -",
	"tcp6 ESTABLISHED " + netip.MustParseAddr("2001:db8::1").String() + " 443 " + netip.MustParseAddr("fe80::1:0:0:1").String() + " 51000 0 -",
	"tcp FIN_WAIT2 192.168.1.2 40000 93.184.216.34 80 0 -",
	"tcp ESTABLISHED 1.2.3.4 1 5.6.7.8 2 0 -",
	"udp CLOSE 0.0.0.0 53 0.0.0.0 0 0 -",
}

// netstatLines turns netstat.lua's records into plantedSockets' form,
// checking each is well formed: a known protocol and state, addresses of
// its family in canonical form, ports and inode in range. The second result
// lists the error records (what ended a walk early).
func netstatLines(t *testing.T, recs []map[string]any) (out, errs []string) {
	t.Helper()
	states := map[string]bool{}
	for _, s := range procTCPStates {
		states[s] = true
	}
	for _, r := range recs {
		if e, ok := r["error"].(string); ok && len(r) <= 2 { // error and guest
			errs = append(errs, e)
			continue
		}
		proto, _ := r["proto"].(string)
		state, _ := r["state"].(string)
		ok := (proto == "tcp" || proto == "tcp6" || proto == "udp" || proto == "udp6") && states[state]
		for _, k := range []string{"local", "remote"} {
			s, _ := r[k].(string)
			a, err := netip.ParseAddr(s)
			ok = ok && err == nil && a.String() == s && a.Is4() == !strings.HasSuffix(proto, "6")
		}
		for _, k := range []string{"lport", "rport", "inode"} {
			n, isNum := r[k].(float64)
			ok = ok && isNum && n >= 0 && n == float64(int64(n)) && (k == "inode" || n < 65536)
		}
		if !ok {
			t.Errorf("malformed record %v", r)
			continue
		}
		pid := "-"
		if p, has := r["pid"]; has {
			pid = fmt.Sprint(p)
		}
		out = append(out, fmt.Sprintf("%s %s %s %v %s %v %v %s", proto, state, r["local"], r["lport"], r["remote"], r["rport"], r["inode"], pid))
	}
	return out, errs
}

// TestExampleNetstat: on the 6.1 and 6.12 dumps, netstat.lua lists well
// formed sockets (these guests ran no network program, and their truth has
// no /proc/net to compare with); on a writable copy, the five sockets
// plantSockets linked into empty buckets of the TCP listening and
// established tables and of UDP's are listed besides those, exactly, in
// table order: addresses of both families, ports from network and host
// order, TIME_WAIT's substate, the inode through socket_alloc; the chain
// that loops is listed up to the loop and reported as cyclic.
func TestExampleNetstat(t *testing.T) {
	for _, v := range viewVariants {
		t.Run(v, func(t *testing.T) {
			before, errs := netstatLines(t, runExample(t, v, "netstat.lua"))
			if len(errs) != 0 {
				t.Errorf("walk errors on the dump: %q", errs)
			}
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			after, errs := netstatLines(t, runTampered(t, writableCore(t, img), plantSockets, "netstat.lua"))
			if len(errs) != 1 || !strings.Contains(errs[0], "cyclic") {
				t.Errorf("walk errors after planting a looped chain: %q; want one that says cyclic", errs)
			}
			want := append(append([]string{}, before...), plantedSockets...)
			var planted []string
			for _, l := range after {
				if strings.HasSuffix(l, " -") && strings.Contains(strings.Join(plantedSockets, "\n"), l) {
					planted = append(planted, l)
				}
			}
			if strings.Join(planted, "\n") != strings.Join(plantedSockets, "\n") {
				t.Errorf("planted sockets, in table order:\n%s\nwant:\n%s", strings.Join(planted, "\n"), strings.Join(plantedSockets, "\n"))
			}
			sort.Strings(after)
			sort.Strings(want)
			if strings.Join(after, "\n") != strings.Join(want, "\n") {
				t.Errorf("after planting:\n%s\nwant the dump's own and the planted:\n%s", strings.Join(after, "\n"), strings.Join(want, "\n"))
			}
			t.Logf("%d sockets in the dump, %d after planting", len(before), len(after))
		})
	}
}

// TestNetLibFormats: net.ip6 writes what Go's net/netip does (RFC 5952) for
// random addresses with zero groups in random places, IPv4-mapped ones and
// the edge cases; net.ip4 and net.ntohs for random values.
func TestNetLibFormats(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var in, want []string
	add := func(b []byte, w string) {
		in = append(in, fmt.Sprintf("%x", b))
		want = append(want, w)
	}
	for _, s := range []string{"::", "::1", "1::", "1::1", "::ffff:127.0.0.1", "fe80::1:0:0:1", "1:0:0:2:0:0:0:3", "1:0:2:0:3:0:4:0"} {
		a := netip.MustParseAddr(s)
		b := a.As16()
		add(b[:], a.String())
	}
	for i := 0; i < 500; i++ {
		var b [16]byte
		rng.Read(b[:])
		for g := 0; g < 8; g++ {
			if rng.Intn(2) == 0 {
				b[2*g], b[2*g+1] = 0, 0
			}
		}
		if i%50 == 0 {
			copy(b[:], "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff")
		}
		add(b[:], netip.AddrFrom16(b).String())
	}
	for i := 0; i < 100; i++ {
		var b [4]byte
		rng.Read(b[:])
		add(b[:], netip.AddrFrom4(b).String())
		v := rng.Intn(65536)
		in = append(in, fmt.Sprint(v))
		want = append(want, fmt.Sprint(v>>8|(v&0xff)<<8))
	}
	src := `local net = require("net")
for _, a in ipairs(arg) do
  if #a == 32 or #a == 8 then
    local b = a:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
    print(#b == 16 and net.ip6(b) or net.ip4(b))
  else
    print(net.ntohs(tonumber(a)))
  end
end`
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{}, Libs: scripts.Libs()})
	defer rt.Close()
	if err := rt.RunString(src, "formats", in); err != nil {
		t.Fatal(err)
	}
	rt.Flush()
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d lines for %d inputs", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: net gives %s, Go %s", in[i], got[i], want[i])
		}
	}
}
