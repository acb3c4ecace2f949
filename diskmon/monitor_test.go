package diskmon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/diskmon/nbd"
	"github.com/xascript/xascript/diskmon/tapfifo"
)

// These tests change real ext4 images with e2fsprogs (mkfs.ext4 -d,
// debugfs -w) and check that every way xascript can see the change (a
// before/after pair, writes through its NBD server, a tapfifo stream) gives
// the events of the paper's Program 5.2. A live guest writing through the
// tap is the e2e suite's job (integration/diske2e).

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install e2fsprogs (make disk-deps)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// paperImages makes an ext4 image holding /root/bar and a copy of it in which
// debugfs made the paper's changes: mkdir foo, touch dummy, rm bar.
func paperImages(t *testing.T, kind string) (before, after string) {
	need(t, "mkfs."+kind, "debugfs")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "root"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"root/bar", "root/keep"} {
		if err := os.WriteFile(filepath.Join(tree, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before = filepath.Join(dir, "before.img")
	run(t, "mkfs."+kind, "-q", "-F", "-b", "4096", "-d", tree, before, "32M")
	after = filepath.Join(dir, "after.img")
	data, err := os.ReadFile(before)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(after, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "debugfs", "-w", "-R", "mkdir /root/foo", after)
	run(t, "debugfs", "-w", "-R", "write /dev/null /root/dummy", after)
	run(t, "debugfs", "-w", "-R", "rm /root/bar", after)
	return before, after
}

var paperLines = []string{"MKDIR: /root/foo", "MKFILE: /root/dummy", "RMFILE: /root/bar"}

// changedBlocks lists the 4 KiB blocks that differ between two images.
func changedBlocks(t *testing.T, before, after string) (offs []int64, blocks [][]byte) {
	a, err := os.ReadFile(before)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(after)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off+4096 <= len(b); off += 4096 {
		if !bytes.Equal(a[off:off+4096], b[off:off+4096]) {
			offs = append(offs, int64(off))
			blocks = append(blocks, b[off:off+4096])
		}
	}
	if len(offs) == 0 {
		t.Fatal("debugfs changed nothing")
	}
	return offs, blocks
}

func lines(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.String())
	}
	return out
}

func TestCompareImages(t *testing.T) {
	for _, kind := range []string{"ext2", "ext3", "ext4"} {
		t.Run(kind, func(t *testing.T) {
			before, after := paperImages(t, kind)
			m, err := OpenMonitor(context.Background(), MonitorOptions{Image: before, After: after})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got := make(chan Event, 16)
			w, err := m.Watch("/root", WatchOptions{}, func(e Event) { got <- e })
			if err != nil {
				t.Fatal(err)
			}
			<-w.Done()
			close(got)
			var evs []Event
			for e := range got {
				evs = append(evs, e)
			}
			if l := lines(evs); !reflect.DeepEqual(l, paperLines) {
				t.Fatalf("events %q, want %q", l, paperLines)
			}
		})
	}
}

// collect gathers a watch's events until it is done.
func collect(w **Watch) (fn func(Event), result func() []Event) {
	ch := make(chan Event, 1024)
	return func(e Event) { ch <- e }, func() []Event {
		<-(*w).Done()
		close(ch)
		var evs []Event
		for e := range ch {
			evs = append(evs, e)
		}
		return evs
	}
}

// The blocks debugfs changed, written through xascript's NBD server as a
// guest would, give the paper's events; the served image ends up equal to
// debugfs's.
func TestNBDWritesMakeEvents(t *testing.T) {
	before, after := paperImages(t, "ext4")
	offs, blocks := changedBlocks(t, before, after)
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	m, err := OpenMonitor(context.Background(), MonitorOptions{Image: before, NBDSocket: sock,
		Tracker: TrackerOptions{Quiet: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v: want owner-only", fi.Mode(), err)
	}
	var w *Watch
	fn, result := collect(&w)
	if w, err = m.Watch("/root", WatchOptions{}, fn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nbd.Dial(ctx, sock, nbd.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range offs {
		if _, err := c.WriteAt(blocks[i], off); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Events come after the flush, before any shutdown.
	deadline := time.Now().Add(20 * time.Second)
	for m.Tracker().Rescans() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	m.Shutdown()
	if l := lines(result()); !reflect.DeepEqual(l, paperLines) {
		t.Fatalf("events %q, want %q", l, paperLines)
	}
	a, _ := os.ReadFile(after)
	b, _ := os.ReadFile(before)
	if !bytes.Equal(a, b) {
		t.Fatal("served image differs from debugfs's after the writes")
	}
}

// A blktap-style backend writes the image itself and streams tapfifo
// records; the records' end ends the watch.
func TestTapFIFOStream(t *testing.T) {
	before, after := paperImages(t, "ext3")
	offs, blocks := changedBlocks(t, before, after)
	fifo := filepath.Join(t.TempDir(), "tap.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMonitor(context.Background(), MonitorOptions{Image: before, TapFIFO: fifo})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var w *Watch
	fn, result := collect(&w)
	if w, err = m.Watch("/root", WatchOptions{}, fn); err != nil {
		t.Fatal(err)
	}
	img, err := os.OpenFile(before, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	out, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tw := tapfifo.NewWriter(out)
	for i, off := range offs {
		if _, err := img.WriteAt(blocks[i], off); err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteRequest(tapfifo.OpWrite, uint64(off), 4096, blocks[i]); err != nil {
			t.Fatal(err)
		}
	}
	out.Close()
	if l := lines(result()); !reflect.DeepEqual(l, paperLines) {
		t.Fatalf("events %q, want %q", l, paperLines)
	}
}

// Failures to open are errors naming the image, never a crash, and leave
// nothing behind (the NBD socket is not created).
func TestOpenMonitorErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.img")
	if err := os.WriteFile(junk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	for _, o := range []MonitorOptions{
		{Image: junk, NBDSocket: sock},
		{Image: junk},
		{Image: filepath.Join(dir, "missing.img")},
		{Image: junk, NBDSocket: sock, After: junk},
		{Image: dir},
	} {
		m, err := OpenMonitor(context.Background(), o)
		if err == nil {
			m.Close()
			t.Fatalf("%+v: opened", o)
		}
		if _, serr := os.Stat(sock); serr == nil {
			t.Fatalf("%+v: left the socket behind", o)
		}
		t.Logf("%+v: %v", o, err)
	}
}

// debugfsBlocks lists the blocks of a file (by path or <ino>) in an image.
func debugfsBlocks(t *testing.T, img, file string) []int64 {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "blocks "+file, img).Output()
	if err != nil {
		t.Fatalf("debugfs blocks %s: %v", file, err)
	}
	var blocks []int64
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("debugfs blocks %s: %q", file, out)
		}
		blocks = append(blocks, n)
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no blocks", file)
	}
	return blocks
}

// A guest that writes garbage over a watched folder's block, and over its
// whole journal, gets ERROR events naming the block; the tracker keeps the
// folder's last good listing (no flood of removals) and goes on reporting
// once the disk makes sense again.
func TestGarbageThroughNBD(t *testing.T) {
	before, after := paperImages(t, "ext4")
	offs, blocks := changedBlocks(t, before, after)
	rootBlock := debugfsBlocks(t, before, "/root")[0] * 4096
	journal := debugfsBlocks(t, before, "<8>")
	orig := make([]byte, 4096)
	f, err := os.Open(before)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(orig, rootBlock); err != nil {
		t.Fatal(err)
	}
	f.Close()

	sock := filepath.Join(t.TempDir(), "nbd.sock")
	m, err := OpenMonitor(context.Background(), MonitorOptions{Image: before, NBDSocket: sock,
		Tracker: TrackerOptions{Quiet: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got := make(chan Event, 64)
	if _, err := m.Watch("/root", WatchOptions{}, func(e Event) { got <- e }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := nbd.Dial(ctx, sock, nbd.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + 13)
	}
	write := func(p []byte, off int64) {
		t.Helper()
		if _, err := c.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
	next := func() Event {
		t.Helper()
		select {
		case e := <-got:
			return e
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return Event{}
	}

	write(garbage, rootBlock)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	e := next()
	if e.Op != OpError || !strings.Contains(e.Err, fmt.Sprint(rootBlock/4096)) {
		t.Fatalf("garbage in /root's block gave %v, want an ERROR naming block %d", e, rootBlock/4096)
	}
	// The whole journal turned to garbage: no crash, no hang.
	for _, b := range journal {
		write(garbage, b*4096)
	}
	write(orig, rootBlock)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	// Then the paper's changes: reported as if nothing had happened.
	for i, off := range offs {
		write(blocks[i], off)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for len(lines) < 3 {
		e := next()
		if e.Op == OpError {
			t.Logf("error event on the way: %v", e)
			continue
		}
		lines = append(lines, e.String())
	}
	if !reflect.DeepEqual(lines, paperLines) {
		t.Fatalf("after the garbage: %q, want %q", lines, paperLines)
	}
}
