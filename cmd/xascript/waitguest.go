package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/types"
	"github.com/xascript/xascript/vmi/xen"
)

// A guest whose disk xascript serves (--nbd, --nbd-device) cannot run before
// xascript does: QEMU opens the NBD socket as it starts, and `xl create`
// needs /dev/nbdN up before blkback can export it. So with those flags the
// guest named by --qemu or --dom is waited for, up to --wait-guest.

// guestRetryEvery spaces the attempts: each one probes the whole of memory
// for the kernel.
var guestRetryEvery = time.Second

// waitProgressEvery spaces the "still waiting" lines on stderr.
var waitProgressEvery = 30 * time.Second

// defaultWaitGuest is --wait-guest's default: a guest's boot takes seconds,
// a minute under TCG on a loaded machine.
const defaultWaitGuest = 3 * time.Minute

// servesGuestDisk tells whether the memory target is the guest whose disk
// xascript serves, so that it starts after xascript: --qemu or --dom with
// --nbd or --nbd-device.
func (o *options) servesGuestDisk() bool {
	return (o.qemu != "" || o.dom != "") && (o.nbd != "" || o.nbdDevice != "")
}

// openGuestForDisk opens a --qemu guest. With --nbd, the guest whose disk
// xascript serves cannot be running yet when xascript starts: there the QMP
// socket, and then a kernel in the guest's memory, are waited for, up to
// --wait-guest, before the script runs. Any other target is opened once.
// (A --dom guest is waited for by waitingGuest, without holding the script
// back.)
func openGuestForDisk(ctx context.Context, o *options, stderr io.Writer) (*guest, error) {
	if o.qemu == "" || !o.servesGuestDisk() || o.waitGuest <= 0 {
		return openGuest(o)
	}
	deadline := time.Now().Add(o.waitGuest)
	said := false
	for {
		g, err := openGuest(o)
		if err == nil {
			return g, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("waited %v for the guest that uses the --nbd disk to boot: %w", o.waitGuest, err)
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

// waitingGuest is the --dom guest of a run that serves its disk
// (--nbd-device or --nbd): xascript starts before `xl create`, so the domain
// does not exist yet, or runs no kernel yet, when the script starts. The
// script runs at once, so that its disk watches see the guest's writes from
// the first one; its first access to memory waits, up to --wait-guest, until
// the domain's kernel can be opened, saying so on stderr. Once the wait
// failed, every access returns that error. Like the Lua state it serves, it
// is for one goroutine at a time.
type waitingGuest struct {
	ctx    context.Context
	o      *options
	stderr io.Writer
	// open opens the guest (openGuest; tests replace it).
	open func(*options) (*guest, error)
	// beforeWait flushes what the script printed before the wait starts.
	beforeWait func()

	g   *guest
	err error
}

// kernel opens the guest on first use, waiting for it.
func (w *waitingGuest) kernel() (*guest, error) {
	if w.g != nil || w.err != nil {
		return w.g, w.err
	}
	w.g, w.err = w.wait()
	return w.g, w.err
}

func (w *waitingGuest) wait() (*guest, error) {
	name := "domain " + w.o.dom
	start := time.Now()
	deadline := start.Add(w.o.waitGuest)
	lastSaid := time.Time{}
	for attempt := 0; ; attempt++ {
		g, err := w.open(w.o)
		if err == nil {
			if attempt > 0 && !w.o.quiet {
				fmt.Fprintf(w.stderr, "xascript: %s runs: kernel found after %.1fs\n", name, time.Since(start).Seconds())
			}
			return g, nil
		}
		switch {
		case errors.Is(err, xen.ErrNoAccess):
			return nil, err // not dom0, or not root: no wait cures that
		case w.o.waitGuest <= 0:
			return nil, err
		case !time.Now().Before(deadline):
			return nil, fmt.Errorf("waited %v for %s to run: %w", w.o.waitGuest, name, err)
		}
		if !w.o.quiet {
			switch {
			case attempt == 0:
				if w.beforeWait != nil {
					w.beforeWait()
				}
				fmt.Fprintf(w.stderr, "xascript: waiting up to %v for %s to run (serving %s meanwhile): %s\n", w.o.waitGuest, name, w.o.disk, oneLine(err))
				lastSaid = time.Now()
			case time.Since(lastSaid) >= waitProgressEvery:
				fmt.Fprintf(w.stderr, "xascript: still waiting for %s (%.0fs of %v): %s\n", name, time.Since(start).Seconds(), w.o.waitGuest, oneLine(err))
				lastSaid = time.Now()
			}
		}
		t := time.NewTimer(guestRetryEvery)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("interrupted while waiting for %s to run: %w", name, err)
		}
	}
}

// Close releases the guest if it was opened.
func (w *waitingGuest) Close() error {
	if w.g == nil {
		return nil
	}
	return w.g.Close()
}

// The bindings.Guest methods, and the optional ones the bindings look for,
// each opening the guest first (through call or call1); the failed wait's
// error is every method's error.

// call1 runs f on the kernel once the guest is open.
func call1[T any](w *waitingGuest, f func(*linux.Kernel) (T, error)) (T, error) {
	g, err := w.kernel()
	if err != nil {
		var zero T
		return zero, err
	}
	return f(g.kernel)
}

// call is call1 for methods that return only an error.
func (w *waitingGuest) call(f func(*linux.Kernel) error) error {
	g, err := w.kernel()
	if err != nil {
		return err
	}
	return f(g.kernel)
}

func (w *waitingGuest) ReadVirt(buf []byte, va uint64) error {
	return w.call(func(k *linux.Kernel) error { return k.ReadVirt(buf, va) })
}

func (w *waitingGuest) ReadUintVirt(va uint64, size int) (uint64, error) {
	return call1(w, func(k *linux.Kernel) (uint64, error) { return k.ReadUintVirt(va, size) })
}

func (w *waitingGuest) ReadPhys(buf []byte, pa uint64) error {
	return w.call(func(k *linux.Kernel) error { return k.ReadPhys(buf, pa) })
}

func (w *waitingGuest) Translate(va uint64) (uint64, error) {
	return call1(w, func(k *linux.Kernel) (uint64, error) { return k.Translate(va) })
}

// PointerSize is 8 when the guest could not be opened: the read that
// follows fails with the reason.
func (w *waitingGuest) PointerSize() int {
	g, err := w.kernel()
	if err != nil {
		return 8
	}
	return g.kernel.PointerSize()
}

func (w *waitingGuest) Symbol(name string) (uint64, error) {
	return call1(w, func(k *linux.Kernel) (uint64, error) { return k.Symbol(name) })
}

func (w *waitingGuest) Offsetof(structName, member string) (uint64, error) {
	return call1(w, func(k *linux.Kernel) (uint64, error) { return k.Offsetof(structName, member) })
}

func (w *waitingGuest) Sizeof(typeName string) (uint64, error) {
	return call1(w, func(k *linux.Kernel) (uint64, error) { return k.Sizeof(typeName) })
}

// Describe says why there is nothing to describe when the guest could not
// be opened.
func (w *waitingGuest) Describe() vmi.KernelInfo {
	g, err := w.kernel()
	if err != nil {
		return vmi.KernelInfo{Target: "domain " + w.o.dom + " (not opened)", Notes: []string{oneLine(err)}}
	}
	return g.kernel.Describe()
}

func (w *waitingGuest) Pause() error { return w.call((*linux.Kernel).Pause) }

// Resume has nothing to resume before the guest was opened.
func (w *waitingGuest) Resume() error {
	if w.g == nil {
		return nil
	}
	return w.g.kernel.Resume()
}

// Paused opens the guest first (with_paused asks it before pausing); one
// that could not be opened is not paused, and the Pause that follows
// fails with the reason.
func (w *waitingGuest) Paused() bool {
	g, err := w.kernel()
	if err != nil {
		return false
	}
	return g.kernel.Paused()
}

func (w *waitingGuest) Flush() {
	if w.g != nil {
		w.g.kernel.Flush()
	}
}

// Types is the kernel's type graph once the guest runs: typed views and the
// container iterators (bindings.TypedGuest) work through the wait too.
func (w *waitingGuest) Types() (types.Graph, error) { return call1(w, (*linux.Kernel).Types) }

func (w *waitingGuest) WriteVirt(buf []byte, va uint64) error {
	return w.call(func(k *linux.Kernel) error { return k.WriteVirt(buf, va) })
}

func (w *waitingGuest) WritePhys(buf []byte, pa uint64) error {
	return w.call(func(k *linux.Kernel) error { return k.WritePhys(buf, pa) })
}

// Writable waits for the guest: whether it may be written is the target's
// to say.
func (w *waitingGuest) Writable() error { return w.call((*linux.Kernel).Writable) }

func (w *waitingGuest) SymbolAt(a uint64) (vmi.SymbolInfo, error) {
	return call1(w, func(k *linux.Kernel) (vmi.SymbolInfo, error) { return k.SymbolAt(a) })
}

func (w *waitingGuest) PerCPU(name string, cpu int) (uint64, error) {
	return call1(w, func(k *linux.Kernel) (uint64, error) { return k.PerCPU(name, cpu) })
}

func (w *waitingGuest) CPUs(set string) ([]int, error) {
	return call1(w, func(k *linux.Kernel) ([]int, error) { return k.CPUs(set) })
}

func (w *waitingGuest) OpenProcess(pid int) (vmi.Process, error) {
	return call1(w, func(k *linux.Kernel) (vmi.Process, error) { return k.OpenProcess(pid) })
}

func (w *waitingGuest) OpenProcessOf(task uint64) (vmi.Process, error) {
	return call1(w, func(k *linux.Kernel) (vmi.Process, error) { return k.OpenProcessOf(task) })
}

// A script that waits for its guest has every binding a script on an open
// guest has: waitingGuest is each optional interface the bindings look for
// that linux.Kernel is (TestWaitingGuestRunsEveryArea runs them).
var _ interface {
	bindings.Guest
	bindings.GuestWriter
	bindings.TypedGuest
	bindings.SymbolNamer
	bindings.PerCPUer
	bindings.Describer
	bindings.Flusher
	vmi.Pauser
	vmi.ProcessOpener
} = (*waitingGuest)(nil)
