package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With --nbd, a QMP socket that never appears is waited for up to the
// limit, then reported with the last error; an interrupt ends the wait at
// once; without --nbd nothing is waited for.
func TestOpenGuestForDiskWaits(t *testing.T) {
	limit, every := guestStartLimit, guestRetryEvery
	t.Cleanup(func() { guestStartLimit, guestRetryEvery = limit, every })
	guestStartLimit, guestRetryEvery = 600*time.Millisecond, 50*time.Millisecond
	missing := filepath.Join(t.TempDir(), "qmp.sock")

	var stderr strings.Builder
	start := time.Now()
	_, err := openGuestForDisk(context.Background(), &options{qemu: missing, nbd: "nbd.sock", disk: "d.img"}, &stderr)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "waited") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v", err)
	}
	if took < guestStartLimit || took > guestStartLimit+5*time.Second {
		t.Errorf("gave up after %v, limit %v", took, guestStartLimit)
	}
	if !strings.Contains(stderr.String(), "waiting for the guest behind "+missing) {
		t.Errorf("stderr %q does not say what it waits for", stderr.String())
	}

	guestStartLimit = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = openGuestForDisk(ctx, &options{qemu: missing, nbd: "nbd.sock", disk: "d.img", quiet: true}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || time.Since(start) > 10*time.Second {
		t.Fatalf("interrupted wait: %v after %v", err, time.Since(start))
	}

	start = time.Now()
	_, err = openGuestForDisk(context.Background(), &options{qemu: missing}, &stderr)
	if err == nil || strings.Contains(err.Error(), "waited") || time.Since(start) > 10*time.Second {
		t.Fatalf("without --nbd: %v after %v", err, time.Since(start))
	}
}
