package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/socktest"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/paging"
	"github.com/xascript/xascript/vmi/qemu"
)

// fakeLive is a QEMU guest of 8 pages, RAM in a shared file, run state in
// socktest.QMP: page tables at pages 0-3 map va 0 onto page 4. No kernel
// lives there; the tests build a linux.Kernel over it by hand.
func fakeLive(t *testing.T, paused bool) (*socktest.QMP, []byte) {
	t.Helper()
	ram := make([]byte, 8*4096)
	le := binary.LittleEndian
	for i, e := range []uint64{0x1000 | 3, 0x2000 | 3, 0x3000 | 3, 0x4000 | 3} {
		le.PutUint64(ram[i*0x1000:], e)
	}
	le.PutUint32(ram[0x4000:], 0x44444444)
	le.PutUint32(ram[0x6000:], 0x66666666)
	file := filepath.Join(t.TempDir(), "mem")
	if err := os.WriteFile(file, ram, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	guest, err := unix.Mmap(int(f.Fd()), 0, len(ram), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(guest) })
	mtree := "FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n" +
		"  0000000000000000-0000000000007fff (prio 0, ram): mem\n"
	q := &socktest.QMP{Paused: paused, Handle: func(cmd string, args map[string]any) (string, bool) {
		switch {
		case cmd == "query-memdev":
			return `[{"id": "mem", "share": true, "size": 32768}]`, true
		case cmd == "qom-get" && args["path"] == "/objects/mem":
			b, _ := json.Marshal(file)
			return string(b), true
		case cmd == "human-monitor-command" && args["command-line"] == "info mtree -f":
			b, _ := json.Marshal(mtree)
			return string(b), true
		}
		return "", false
	}}
	return q, guest
}

// liveGuest opens the fake as xascript does, with a kernel whose root is
// the fake's page tables.
func liveGuest(t *testing.T, sock string) *guest {
	t.Helper()
	tg, err := qemu.Open(sock, qemu.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := &guest{target: tg, kernel: &linux.Kernel{Target: tg, Space: paging.New(tg, paging.IA32e, 0)}}
	t.Cleanup(func() { g.Close() })
	return g
}

func runLua(t *testing.T, g *guest, src string) string {
	t.Helper()
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: g.kernel}})
	defer rt.Close()
	if err := rt.RunString(src, "pause.lua", nil); err != nil {
		t.Fatalf("script: %v", err)
	}
	rt.Flush()
	return out.String()
}

// xascript resumes at exit only what it paused: a guest it found paused
// stays paused whatever the script did, and one it paused runs again.
func TestPauseOwnershipLua(t *testing.T) {
	const script = `
		print(pause(), resume())
		print(with_paused(function(a) return a * 2 end, 21))
		pause()
	`
	for _, found := range []string{"running", "paused"} {
		t.Run(found, func(t *testing.T) {
			q, _ := fakeLive(t, found == "paused")
			g := liveGuest(t, q.Serve(t))
			if got := runLua(t, g, script); got != "true\ttrue\n42\n" {
				t.Errorf("script printed %q", got)
			}
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
			stops, conts := q.Counts()
			if found == "paused" {
				if !q.IsPaused() || stops != 0 || conts != 0 {
					t.Errorf("a guest found paused: paused %v at exit after %d stops and %d conts; want paused, none", q.IsPaused(), stops, conts)
				}
				return
			}
			// pause/resume, with_paused's pause and resume, the last pause
			// and its resume at exit.
			if q.IsPaused() || stops != 3 || conts != 3 {
				t.Errorf("a running guest: paused %v at exit after %d stops and %d conts; want running, 3 and 3", q.IsPaused(), stops, conts)
			}
		})
	}
}

// with_paused inside the script's own pause, or an operator's, leaves the
// pause alone.
func TestWithPausedKeepsAPause(t *testing.T) {
	q, _ := fakeLive(t, false)
	g := liveGuest(t, q.Serve(t))
	runLua(t, g, `pause(); with_paused(function() end)`)
	if !q.IsPaused() {
		t.Error("with_paused resumed the script's own pause")
	}
	runLua(t, g, `resume()`)
	q.Stop() // the operator
	deadline := time.Now().Add(5 * time.Second)
	for !g.kernel.Paused() {
		if time.Now().After(deadline) {
			t.Fatal("the operator's stop not seen")
		}
		time.Sleep(time.Millisecond)
	}
	runLua(t, g, `with_paused(function() end); resume()`)
	g.Close()
	if !q.IsPaused() {
		t.Error("the operator's pause was undone")
	}
}

// Translations cached while the guest ran are not used inside the pause:
// pause() reads the page tables as they are now.
func TestPauseFlushesTranslations(t *testing.T) {
	q, ram := fakeLive(t, false)
	g := liveGuest(t, q.Serve(t))
	if got := runLua(t, g, `print(string.format("%x", read_u32(0)))`); got != "44444444\n" {
		t.Fatalf("va 0 holds %q", got)
	}
	binary.LittleEndian.PutUint64(ram[0x3000:], 0x6000|3) // the running guest remaps va 0
	if got := runLua(t, g, `pause(); print(string.format("%x", read_u32(0)))`); got != "66666666\n" {
		t.Errorf("inside the pause va 0 holds %q, want 66666666 (a translation cached while the guest ran)", got)
	}
}

// --pause on a guest whose kernel cannot be found: the error path closes
// the target, resuming our pause and only ours.
func TestPauseFlagOnError(t *testing.T) {
	for _, paused := range []bool{false, true} {
		q, _ := fakeLive(t, paused)
		sock := q.Serve(t)
		o := &options{qemu: sock, pause: true, quiet: true, noProfileCache: true, cacheDir: t.TempDir()}
		if _, err := openGuest(o); err == nil {
			t.Fatal("a kernel was found in 8 pages of page tables")
		}
		stops, conts := q.Counts()
		if q.IsPaused() != paused || stops != conts || (paused && stops != 0) || (!paused && stops != 1) {
			t.Errorf("found paused %v: paused %v after %d stops and %d conts", paused, q.IsPaused(), stops, conts)
		}
	}
}
