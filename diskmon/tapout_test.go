package diskmon

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/diskmon/nbd"
	"github.com/xascript/xascript/diskmon/tapfifo"
)

// Both ends of the tapfifo path: a monitor that serves the disk writes the
// records of what it served to a FIFO (--tapfifo-out), and a second monitor
// that reads them (--tapfifo) off the same image sees the same events.
func TestTapFIFOOutFeedsASecondMonitor(t *testing.T) {
	before, after := paperImages(t, "ext4")
	offs, blocks := changedBlocks(t, before, after)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "tap.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "nbd.sock")
	server, err := OpenMonitor(context.Background(), MonitorOptions{Image: before, NBDSocket: sock, TapFIFOOut: fifo,
		Tracker: TrackerOptions{Quiet: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	reader, err := OpenMonitor(context.Background(), MonitorOptions{Image: before, TapFIFO: fifo})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	var ws, wr *Watch
	fnS, resultS := collect(&ws)
	fnR, resultR := collect(&wr)
	if ws, err = server.Watch("/root", WatchOptions{}, fnS); err != nil {
		t.Fatal(err)
	}
	if wr, err = reader.Watch("/root", WatchOptions{}, fnR); err != nil {
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
	// The server's end closes the FIFO, which ends the reader's watch.
	server.Shutdown()
	if l := lines(resultS()); !reflect.DeepEqual(l, paperLines) {
		t.Errorf("serving monitor: events %q, want %q", l, paperLines)
	}
	if l := lines(resultR()); !reflect.DeepEqual(l, paperLines) {
		t.Errorf("monitor reading the tapfifo records: events %q, want %q", l, paperLines)
	}
}

// The records say what was served, one per request as XenAccess wrote them:
// op, first sector, sector count and the first 4 KiB of a write's data.
func TestTapFIFOOutRecords(t *testing.T) {
	out := filepath.Join(t.TempDir(), "records")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o := newTapOut(out, t.Logf)
	o.start(context.Background())
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = byte(i / 512)
	}
	o.write(nbd.OpWrite, 1<<20, uint64(len(big)), big)
	o.write(nbd.OpTrim, 4096, 8192, nil)
	o.write(nbd.OpWriteZeroes, 0, 512, nil)
	o.write(nbd.OpFlush, 0, 0, nil)
	o.write(nbd.OpRead, 0, 4096, nil) // reads change nothing: no record
	o.stop()
	o.write(nbd.OpWrite, 0, 512, make([]byte, 512)) // after stop: ignored, no panic
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := tapfifo.NewReader(f)
	var got []tapfifo.Record
	for {
		var rec tapfifo.Record
		if err := r.Next(&rec); err != nil {
			break
		}
		got = append(got, rec)
	}
	want := []struct {
		op     tapfifo.Op
		sector uint64
		count  uint32
	}{{tapfifo.OpWrite, 2048, 128}, {tapfifo.OpDiscard, 8, 16}, {tapfifo.OpWriteZeroes, 0, 1}, {tapfifo.OpFlush, 0, 0}}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Op != w.op || got[i].Sector != w.sector || got[i].Count != w.count {
			t.Errorf("record %d: %s sector %d count %d, want %s %d %d", i, got[i].Op, got[i].Sector, got[i].Count, w.op, w.sector, w.count)
		}
	}
	if d := got[0].Data; d[0] != 0 || d[512] != 1 || d[4095] != 7 {
		t.Errorf("the write's record does not carry its first 4 KiB: %d %d %d", d[0], d[512], d[4095])
	}
}

// A FIFO nobody reads never stalls the disk: records beyond the queue are
// dropped and counted, and stop gives the FIFO up.
func TestTapFIFOOutNeverBlocks(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "tap.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	o := newTapOut(fifo, t.Logf)
	o.start(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		data := make([]byte, 4096)
		for i := 0; i < 3*tapOutQueue; i++ {
			o.write(nbd.OpWrite, uint64(i)*4096, 4096, data)
		}
		o.stop()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("writes to a tapfifo-out FIFO without a reader blocked")
	}
	if n := o.dropped.Load(); n < 2*tapOutQueue {
		t.Errorf("%d records dropped, want at least %d", n, 2*tapOutQueue)
	}
}
