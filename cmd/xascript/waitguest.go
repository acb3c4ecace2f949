package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// guestStartLimit bounds how long xascript waits for a QEMU guest that uses
// its NBD disk: QEMU starts after xascript serves the disk and the kernel
// needs seconds to boot under TCG (a minute on a loaded machine).
var guestStartLimit = 180 * time.Second

// guestRetryEvery spaces the attempts: each one probes the whole of memory
// for the kernel.
var guestRetryEvery = time.Second

// openGuestForDisk opens the target. With --qemu and --nbd together, the
// guest whose disk xascript serves cannot be running yet when xascript
// starts (QEMU opens the NBD socket as it starts): there the QMP socket, and
// then a kernel in the guest's memory, are waited for, up to
// guestStartLimit. Any other target is opened once, as before.
func openGuestForDisk(ctx context.Context, o *options, stderr io.Writer) (*guest, error) {
	if o.qemu == "" || o.nbd == "" {
		return openGuest(o)
	}
	deadline := time.Now().Add(guestStartLimit)
	said := false
	for {
		g, err := openGuest(o)
		if err == nil {
			return g, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("waited %v for the guest that uses the --nbd disk to boot: %w", guestStartLimit, err)
		}
		if !said && !o.quiet {
			fmt.Fprintf(stderr, "xascript: waiting for the guest behind %s to boot (serving %s meanwhile)\n", o.qemu, o.disk)
			said = true
		}
		t := time.NewTimer(guestRetryEvery)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("interrupted while waiting for the guest behind %s: %w", o.qemu, err)
		}
	}
}
