//go:build guests

package qmpbitmap

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xascript/xascript/vmi/qemu"
)

// TestLiveQEMUDiskBitmapPoll runs the scheme against a real QEMU (no guest:
// -M none with one drive; the writes come from HMP qemu-io on a second QMP
// socket, through the same block layer a guest's would): exact dirty runs
// at the bitmap's granularity, each write reported by one poll only, the
// data export reading what was written, and Close leaving query-block and
// query-block-exports as they were. Run by make e2e-qemu.
func TestLiveQEMUDiskBitmapPoll(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 not installed: make testdata-deps installs it")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	const size = 16 << 20
	if err := os.WriteFile(img, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	sock, ctl := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "ctl.sock")
	cmd := exec.Command("qemu-system-x86_64", "-M", "none", "-display", "none", "-nodefaults",
		"-qmp", "unix:"+sock+",server=on,wait=off", "-qmp", "unix:"+ctl+",server=on,wait=off",
		"-drive", "if=none,id=data,file="+img+",format=raw")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	dial := func(path string) *qemu.Client {
		for i := 0; ; i++ {
			q, err := qemu.Dial(path, 5*time.Second, nil)
			if err == nil {
				t.Cleanup(func() { q.Close() })
				return q
			}
			if i > 100 {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	q, c := dial(sock), dial(ctl)
	state := func() string {
		var b strings.Builder
		for _, name := range []string{"query-block", "query-block-exports"} {
			raw, err := c.Execute(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			json.Unmarshal(raw, &v)
			dropActualSize(v)
			out, _ := json.Marshal(v)
			b.Write(out)
		}
		return b.String()
	}
	write := func(off, n int, pattern int) {
		if _, err := c.HMP(fmt.Sprintf(`qemu-io data "write -P %d %d %d"`, pattern, off, n)); err != nil {
			t.Fatal(err)
		}
	}
	before := state()

	s, err := Open(context.Background(), q, Options{Drive: "data", TempDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []Change
	poll := func() []Change {
		got = nil
		if err := s.Poll(context.Background(), func(c Change) { got = append(got, c) }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if ch := poll(); len(ch) != 0 {
		t.Fatalf("nothing written, yet %v", ch)
	}
	write(4096, 4096, 7)
	write(1<<20+100, 10, 8)
	write(3<<20, 128<<10, 9)
	want := fmt.Sprint([][2]uint64{{4096, 4096}, {1 << 20, 4096}, {3 << 20, 128 << 10}})
	var ranges [][2]uint64
	for _, ch := range poll() {
		if !ch.Flush {
			ranges = append(ranges, [2]uint64{ch.Off, ch.Len})
		}
	}
	if fmt.Sprint(ranges) != want {
		t.Errorf("dirty runs %v, want %v (4 KiB granularity)", ranges, want)
	}
	buf := make([]byte, 4096)
	if _, err := s.ReadAt(buf, 4096); err != nil || buf[0] != 7 || buf[4095] != 7 {
		t.Errorf("data export: %v, bytes %d %d, want 7", err, buf[0], buf[4095])
	}
	if ch := poll(); len(ch) != 0 {
		t.Errorf("the same writes reported twice: %v", ch)
	}
	// A rewrite of a cached block: reported, and the cache lets go of it.
	write(4096, 4096, 5)
	if ch := poll(); len(ch) != 1 || ch[0].Off != 4096 || ch[0].Len != 4096 {
		t.Errorf("rewrite reported as %v", ch)
	}
	if _, err := s.ReadAt(buf, 4096); err != nil || buf[0] != 5 {
		t.Errorf("after the rewrite the export read gives %d, %v; want 5", buf[0], err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after := state(); after != before {
		t.Errorf("QEMU's block state changed:\nbefore %s\nafter  %s", before, after)
	}
}

func dropActualSize(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "actual-size")
		for _, y := range x {
			dropActualSize(y)
		}
	case []any:
		for _, y := range x {
			dropActualSize(y)
		}
	}
}
