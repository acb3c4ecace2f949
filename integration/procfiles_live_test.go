//go:build guests

package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/liveguest"
)

// holderSetup is the guest's shell line that prepares what xa-holder TAG
// holds open (holderCommand): a file on a tmpfs mounted at /mnt/xa-TAG and
// one on a second tmpfs mounted inside it, so that a path crosses two
// mounts.
func holderSetup(tag string) string {
	return fmt.Sprintf("mkdir -p %[1]s && mount -t tmpfs xa-%[2]s %[1]s && mkdir %[1]s/sub && "+
		"mount -t tmpfs xa-sub-%[2]s %[1]s/sub && echo %[2]s >%[1]s/held && echo %[2]s >%[1]s/sub/held",
		"/mnt/xa-"+tag, tag)
}

// holderCommand is the guest's shell line that starts xa-holder TAG in
// the background with a known environment variable and, as arguments, the
// files of holderSetup, /proc/version (procfs) and its network namespace
// (nsfs) to hold open.
func holderCommand(tag string) string {
	return fmt.Sprintf("XA_HOLDER_ENV=%[2]s /bin/xa-holder %[2]s %[1]s/held %[1]s/sub/held /proc/version /proc/self/ns/net >/tmp/%[2]s.out 2>&1 &",
		"/mnt/xa-"+tag, tag)
}

// checkProcFiles runs scripts/examples/procmem.lua on each holder and
// scripts/examples/lsof.lua on the guest, and compares them with what the
// guest says of itself: procmem's strings, each with its NUL, are the
// bytes of /proc/PID/cmdline and /proc/PID/environ; lsof lists exactly
// the descriptors in /proc/PID/fd, each with the text readlink gives (the
// held files across two tmpfs mounts, the unlinked one "(deleted)", the
// pipe, the socket, the namespace, the Go runtime's anon inodes).
func checkProcFiles(t *testing.T, bin string, g *liveguest.Guest, holders []*holder) {
	t.Helper()
	type truth struct {
		cmdline, environ string // hex
		fds              map[int]string
	}
	want := map[int]*truth{}
	for _, h := range holders {
		tr := &truth{fds: map[int]string{}}
		for _, w := range []struct {
			file string
			dst  *string
		}{{"cmdline", &tr.cmdline}, {"environ", &tr.environ}} {
			out, err := g.Run(fmt.Sprintf("od -An -v -tx1 /proc/%d/%s", h.pid, w.file), 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			*w.dst = strings.Join(strings.Fields(out), "")
			if *w.dst == "" {
				t.Fatalf("the guest's /proc/%d/%s is empty", h.pid, w.file)
			}
		}
		out, err := g.Run(fmt.Sprintf(`cd /proc/%d/fd && for f in *; do echo "$f $(readlink $f)"; done`, h.pid), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			fd, path, ok := strings.Cut(l, " ")
			n, err := strconv.Atoi(fd)
			if !ok || err != nil {
				t.Fatalf("the guest's fd line %q", l)
			}
			tr.fds[n] = path
		}
		for _, p := range []string{"/mnt/xa-" + h.tag + "/sub/held", "/mnt/xa-" + h.tag + "/held.gone (deleted)"} {
			if !hasValue(tr.fds, p) {
				t.Fatalf("pid %d: the guest's /proc/%d/fd has no %s: %v", h.pid, h.pid, p, tr.fds)
			}
		}
		if !hasValue(tr.fds, "net:[") {
			t.Fatalf("pid %d: the guest's /proc/%d/fd has no network namespace: %v", h.pid, h.pid, tr.fds)
		}
		want[h.pid] = tr
	}
	run := func(script string, args ...string) []map[string]any {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"../scripts/examples/" + script, "--qemu", g.Socket, "--pause", "--json", "--"}, args...)...)
		cmd.Env = cacheEnv(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", script, args, err, tail(string(out), 2000))
		}
		recs, err := Records(string(out))
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	files := map[int]map[int]string{}
	for _, r := range run("lsof.lua") {
		if r["error"] != nil {
			t.Errorf("lsof.lua: %v", r)
		}
		pid, _ := r["pid"].(float64)
		if want[int(pid)] == nil {
			continue
		}
		fd, _ := r["fd"].(float64)
		path, _ := r["path"].(string)
		if files[int(pid)] == nil {
			files[int(pid)] = map[int]string{}
		}
		files[int(pid)][int(fd)] = path
	}
	for _, h := range holders {
		tr := want[h.pid]
		if got, want := fdLines(files[h.pid]), fdLines(tr.fds); got != want {
			t.Errorf("pid %d: lsof.lua\n%s\nthe guest's /proc/%d/fd\n%s", h.pid, got, h.pid, want)
		}
		var args, env strings.Builder
		for _, r := range run("procmem.lua", strconv.Itoa(h.pid)) {
			if r["truncated"] != nil {
				t.Errorf("procmem.lua: %v", r)
			}
			v, _ := r["value"].(string)
			switch r["kind"] {
			case "arg":
				args.WriteString(v + "\x00")
			case "env":
				env.WriteString(v + "\x00")
			default:
				t.Errorf("procmem.lua: %v", r)
			}
		}
		for _, c := range []struct{ name, got, want string }{{"cmdline", args.String(), tr.cmdline}, {"environ", env.String(), tr.environ}} {
			if hex.EncodeToString([]byte(c.got)) != c.want {
				w, _ := hex.DecodeString(c.want)
				t.Errorf("pid %d: procmem.lua read %q; the guest's /proc/%d/%s: %q", h.pid, c.got, h.pid, c.name, w)
			}
		}
		if !strings.Contains(env.String(), "\x00XA_HOLDER_ENV="+h.tag+"\x00") && !strings.HasPrefix(env.String(), "XA_HOLDER_ENV="+h.tag+"\x00") {
			t.Errorf("pid %d: procmem.lua's environment has no XA_HOLDER_ENV=%s: %q", h.pid, h.tag, env.String())
		}
		if h == holders[0] {
			t.Logf("pid %d: lsof.lua as /proc/%d/fd:\n%s", h.pid, h.pid, fdLines(files[h.pid]))
		}
		t.Logf("pid %d (%s): %d descriptors as in /proc/%d/fd; cmdline %d bytes, environ %d bytes as in /proc",
			h.pid, h.tag, len(tr.fds), h.pid, args.Len(), env.Len())
	}
}

// hasValue tells whether m has the value v, or with v ending in "[" one
// that begins with v.
func hasValue(m map[int]string, v string) bool {
	for _, x := range m {
		if x == v || strings.HasSuffix(v, "[") && strings.HasPrefix(x, v) {
			return true
		}
	}
	return false
}

// fdLines is "FD PATH" per descriptor, in fd order.
func fdLines(m map[int]string) string {
	var fds []int
	for fd := range m {
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	var b strings.Builder
	for _, fd := range fds {
		fmt.Fprintf(&b, "%d %s\n", fd, m[fd])
	}
	return b.String()
}
