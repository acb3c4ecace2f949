//go:build guests

package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
)

// procSocket is one line of /proc/net/{tcp,tcp6,udp,udp6} in netstat.lua's
// terms: "PROTO STATE LOCAL LPORT REMOTE RPORT INODE".
func procSocket(t *testing.T, proto, line string) string {
	t.Helper()
	f := strings.Fields(line)
	if len(f) < 10 {
		t.Fatalf("/proc/net/%s line %q", proto, line)
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil || procTCPStates[st] == "" {
		t.Fatalf("/proc/net/%s line %q: state %q", proto, line, f[3])
	}
	return fmt.Sprintf("%s %s %s %s %s", proto, procTCPStates[st], procEndpoint(t, f[1]), procEndpoint(t, f[2]), f[9])
}

// procEndpoint turns "0100007F:9CBB" (the address as the kernel's u32
// words print in hex, so each 4 bytes reversed on x86; the port in host
// order) into "127.0.0.1 40123".
func procEndpoint(t *testing.T, s string) string {
	t.Helper()
	a, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	raw, err2 := hex.DecodeString(a)
	if !ok || err != nil || err2 != nil || (len(raw) != 4 && len(raw) != 16) {
		t.Fatalf("/proc/net endpoint %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	ip, _ := netip.AddrFromSlice(raw)
	return fmt.Sprintf("%s %d", ip, port)
}

// TestGuestLiveQEMUNetstat: a live guest runs xa-sockholder (a static Go
// program in its initramfs) that holds TCP listeners, connections to them
// (ESTABLISHED both ends, and one end in TIME_WAIT) and UDP sockets on
// IPv4 and IPv6. netstat.lua, through xascript --qemu --pause, lists the
// same sockets as the guest's own /proc/net/tcp, tcp6, udp and udp6 right
// before: protocol, state, local and remote address and port, inode; and
// names xa-sockholder's pid and comm as the holder of each socket with an
// inode.
func TestGuestLiveQEMUNetstat(t *testing.T) {
	bin := xascriptBinary(t)
	holderBin := filepath.Join(t.TempDir(), "xa-sockholder")
	build := exec.Command("go", "build", "-o", holderBin, "./testdata/sockholder")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build xa-sockholder: %v\n%s", err, out)
	}
	g := liveguest.StartWith(t, "../testdata/live-guest.sh", liveguest.Config{Files: []string{holderBin + ":/bin/xa-sockholder"}})
	if _, err := g.Run("/bin/xa-sockholder >/tmp/sock.out 2>&1 &", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	ready := regexp.MustCompile(`XA-SOCKHOLDER pid=(\d+) ready`)
	var m []string
	for deadline := time.Now().Add(60 * time.Second); m == nil; {
		out, err := g.Run("cat /tmp/sock.out", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m = ready.FindStringSubmatch(out); m == nil {
			if time.Now().After(deadline) || strings.Contains(out, "xa-sockholder:") {
				t.Fatalf("xa-sockholder printed %q", out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	pid := m[1]

	var want []string
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		out, err := g.Run("cat /proc/net/"+proto, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.Contains(lines[0], "local_address") {
			t.Fatalf("/proc/net/%s: %q", proto, out)
		}
		for _, l := range lines[1:] {
			want = append(want, procSocket(t, proto, l))
		}
	}
	sort.Strings(want)
	// What xa-sockholder holds must be in the guest's own tables, or the
	// comparison below would prove little.
	for _, re := range []string{
		`^tcp LISTEN 127\.0\.0\.1 40123 0\.0\.0\.0 0 [1-9]`, `^tcp6 LISTEN ::1 40124 :: 0 [1-9]`,
		`^tcp ESTABLISHED 127\.0\.0\.1 40123 127\.0\.0\.1 \d+ [1-9]`, `^tcp ESTABLISHED 127\.0\.0\.1 \d+ 127\.0\.0\.1 40123 [1-9]`,
		`^tcp6 ESTABLISHED ::1 40124 ::1 \d+ [1-9]`, `^tcp TIME_WAIT 127\.0\.0\.1 \d+ 127\.0\.0\.1 40123 0$`,
		`^udp CLOSE 127\.0\.0\.1 40125 0\.0\.0\.0 0 [1-9]`, `^udp ESTABLISHED 127\.0\.0\.1 \d+ 127\.0\.0\.1 40125 [1-9]`,
		`^udp6 CLOSE :: 40126 :: 0 [1-9]`,
	} {
		if !regexp.MustCompile("(?m)" + re).MatchString(strings.Join(want, "\n")) {
			t.Fatalf("the guest's /proc/net has no socket like %q:\n%s", re, strings.Join(want, "\n"))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "../scripts/examples/netstat.lua", "--qemu", g.Socket, "--pause", "--json")
	cmd.Env = cacheEnv(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("xascript: %v\n%s\n%s", err, tail(string(outb), 2000), tail(stderr.String(), 2000))
	}
	recs, err := Records(string(outb))
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(string(outb), 2000))
	}
	var got []string
	for _, r := range recs {
		s := fmt.Sprintf("%v %v %v %v %v %v %v", r["proto"], r["state"], r["local"], r["lport"], r["remote"], r["rport"], r["inode"])
		got = append(got, s)
		if r["inode"] != float64(0) && (fmt.Sprint(r["pid"]) != pid || r["comm"] != "xa-sockholder") {
			t.Errorf("%s: held by pid %v (%v); xa-sockholder is pid %s", s, r["pid"], r["comm"], pid)
		}
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("netstat.lua:\n%s\nthe guest's /proc/net/{tcp,tcp6,udp,udp6}:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("%d sockets as in the guest's /proc/net", len(got))
}
