package tapfifo_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xascript/xascript/diskmon/nbd"
	"github.com/xascript/xascript/diskmon/tapfifo"
)

// TestNBDToTapfifo wires an NBD server's change hooks to a Writer, as xascript does
// for the end-to-end test of both ends: replaying the record stream onto the original
// image must give the image the server ended with.
func TestNBDToTapfifo(t *testing.T) {
	const size = 2 << 20
	dir := t.TempDir()
	imgPath := filepath.Join(dir, "disk.img")
	orig := make([]byte, size)
	for i := range orig {
		orig[i] = byte(i * 13)
	}
	if err := os.WriteFile(imgPath, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := nbd.OpenFile(imgPath, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var stream bytes.Buffer
	w := tapfifo.NewWriter(&stream)
	fail := func(err error) {
		if err != nil {
			t.Error(err)
		}
	}
	srv := nbd.NewServer(b, nbd.Options{
		OnWrite: func(off uint64, data []byte) { fail(w.WriteRequest(tapfifo.OpWrite, off, uint64(len(data)), data)) },
		OnChange: func(op nbd.Op, off, length uint64) {
			switch op {
			case nbd.OpTrim:
				fail(w.WriteRequest(tapfifo.OpDiscard, off, length, nil))
			case nbd.OpWriteZeroes:
				fail(w.WriteRequest(tapfifo.OpWriteZeroes, off, length, nil))
			case nbd.OpFlush:
				fail(w.WriteRequest(tapfifo.OpFlush, 0, 0, nil))
			}
		},
	})
	l, err := nbd.ListenUnix(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(t.Context(), l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := nbd.Dial(ctx, filepath.Join(dir, "s"), nbd.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteAt(bytes.Repeat([]byte("tap!"), 75_008), 4096*3+512); err != nil {
		t.Fatal(err)
	}
	if err := c.Trim(1<<20, 64<<10); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteZeroes(1<<20+128<<10, 8192, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	replay := append([]byte{}, orig...)
	r := tapfifo.NewReader(&stream)
	var rec tapfifo.Record
	flushes := 0
	for {
		err := r.Next(&rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Op {
		case tapfifo.OpWrite:
			copy(replay[rec.Offset():], rec.Payload())
		case tapfifo.OpDiscard, tapfifo.OpWriteZeroes: // FileBackend punches holes: zeroes
			clear(replay[rec.Offset() : rec.Offset()+rec.Length()])
		case tapfifo.OpFlush:
			flushes++
		}
	}
	got, err := os.ReadFile(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, replay) || flushes != 1 {
		t.Fatalf("replayed stream differs from the served image (flushes %d)", flushes)
	}
}
