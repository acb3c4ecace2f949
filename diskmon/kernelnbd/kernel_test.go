//go:build linux

package kernelnbd

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/diskmon/nbd"
)

func newImage(t *testing.T, size int64) (string, *nbd.FileBackend) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	b, err := nbd.OpenFile(img, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return img, b
}

// The path Attach sets up, minus the kernel: the server end of a socketpair
// served by ServeTransmission, the other end spoken to as the driver does
// (no handshake, simple replies, the flags it was given by NBD_SET_FLAGS).
func TestSocketPairTransmission(t *testing.T) {
	const size = 1 << 20
	img, b := newImage(t, size)
	var changes []nbd.Op
	s := nbd.NewServer(b, nbd.Options{
		OnChange: func(op nbd.Op, off, length uint64) { changes = append(changes, op) },
		Logf:     t.Logf, MaxInFlight: 1,
	})
	kernelEnd, conn, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.ServeTransmission(context.Background(), conn) }()
	kc, err := net.FileConn(kernelEnd)
	kernelEnd.Close()
	if err != nil {
		t.Fatal(err)
	}
	cl := nbd.NewTransmissionClient(kc, size, s.TransmissionFlags())
	data := bytes.Repeat([]byte("xascript"), 512) // 4 KiB
	if err := cl.Do(nbd.Request{Type: nbd.OpWrite, Flags: nbd.CmdFlagFUA, Offset: 8192, Length: uint32(len(data)), Data: data}); err != nil {
		t.Fatalf("FUA write: %v", err)
	}
	if err := cl.Trim(0, 4096); err != nil {
		t.Fatalf("trim: %v", err)
	}
	if err := cl.WriteZeroes(16384, 4096, true); err != nil {
		t.Fatalf("write zeroes: %v", err)
	}
	if err := cl.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	got := make([]byte, len(data))
	if _, err := cl.ReadAt(got, 8192); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %q..., %v", got[:16], err)
	}
	// Past the end: the driver never asks, but a client that does gets an error, not a hang.
	if err := cl.Do(nbd.Request{Type: nbd.OpRead, Offset: size, Length: 512, Data: make([]byte, 512)}); err == nil {
		t.Error("read past the end succeeded")
	}
	// NBD_CMD_DISC, as NBD_DISCONNECT makes the driver send; the server
	// hangs up first, so closing our end may report it closed already.
	cl.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ServeTransmission after NBD_CMD_DISC: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeTransmission did not return after NBD_CMD_DISC")
	}
	onDisk, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk[8192:8192+len(data)], data) {
		t.Error("the FUA write is not in the image")
	}
	want := []nbd.Op{nbd.OpWrite, nbd.OpTrim, nbd.OpWriteZeroes, nbd.OpFlush}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes %v, want %v", changes, want)
		}
	}
}

// Something that is not an NBD device is refused with an error that says
// so, and Attach leaves nothing running.
func TestAttachNotAnNBDDevice(t *testing.T) {
	_, b := newImage(t, 1<<20)
	s := nbd.NewServer(b, nbd.Options{})
	other := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{os.DevNull, other} {
		d, err := Attach(context.Background(), path, s, 1<<20, t.Logf)
		if err == nil {
			d.Close()
			t.Fatalf("Attach(%s) succeeded", path)
		}
		if !strings.Contains(err.Error(), "not an NBD device") || !strings.Contains(err.Error(), path) {
			t.Errorf("Attach(%s): %v; want the path and \"not an NBD device\"", path, err)
		}
	}
	if _, err := Attach(context.Background(), filepath.Join(t.TempDir(), "none"), s, 1<<20, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Attach of a missing device: %v", err)
	}
	if _, err := Attach(context.Background(), os.DevNull, s, 1000, nil); err == nil || !strings.Contains(err.Error(), "multiple of 512") {
		t.Errorf("Attach with a size of 1000 bytes: %v", err)
	}
}

// TestAttachDevice needs root and nbd.ko: XA_NBD_DEVICE=/dev/nbdN names a
// free device. make e2e-xen runs the same path in Xen's dom0, where blkback
// exports the device to a domU.
func TestAttachDevice(t *testing.T) {
	dev := os.Getenv("XA_NBD_DEVICE")
	if dev == "" {
		t.Skip("XA_NBD_DEVICE (a free /dev/nbdN, as root, nbd.ko loaded) not set; make e2e-xen covers this in dom0")
	}
	const size = 4 << 20
	img, b := newImage(t, size)
	s := nbd.NewServer(b, nbd.Options{Logf: t.Logf})
	d, err := Attach(context.Background(), dev, s, size, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("kernel!!"), 512)
	if _, err := f.WriteAt(data, 4096); err != nil {
		t.Error(err)
	}
	if err := f.Sync(); err != nil {
		t.Error(err)
	}
	f.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk[4096:4096+len(data)], data) {
		t.Error("what was written to the device is not in the image")
	}
	if _, err := os.Stat(filepath.Join("/sys/block", filepath.Base(dev), "pid")); err == nil {
		t.Error("the device is still connected after Close")
	}
}
