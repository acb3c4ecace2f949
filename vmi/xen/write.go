package xen

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/xascript/xascript/vmi"
)

// Writes map each frame they touch writable for the write alone, and unmap
// it after. The frame cache keeps mapping read-only: Xen refuses a writable
// mapping of a PV guest's page tables and descriptor tables, and a chunk
// mapped writable would fail (and so hide from reads) every such frame in
// it. A read-only mapping of a frame is a view of the same machine page as
// the writable one, so reads through the cache see a write at once; the
// generation moves after it, so that translations (and a PV guest's p2m)
// derived from the written bytes are read again.

var _ vmi.Writer = (*Target)(nil)

// Writable implements vmi.Writer.
func (t *Target) Writable() error {
	switch {
	case t.closed:
		return fmt.Errorf("domain %d: target closed", t.domain)
	case t.gone != nil:
		return t.gone
	case !t.writable:
		return vmi.Detailed(nil, vmi.ErrReadOnly, "domain %d was opened read-only", t.domain)
	}
	return nil
}

// maxWritePages bounds one write (64 MiB), so that the frame list it
// builds is bounded whatever the caller asks.
const maxWritePages = 1 << 14

// WritePhys implements vmi.Writer: it stores buf at guest-physical pa (a PV
// guest's pseudo-physical address, written to the machine frame its p2m
// names). Every frame is looked up before any byte is stored; a frame Xen
// will not map writable fails the write there, after the frames before it
// were written.
func (t *Target) WritePhys(buf []byte, pa uint64) error {
	if err := t.Writable(); err != nil {
		return &vmi.PhysError{Addr: pa, Err: err}
	}
	if uint64(len(buf)) > maxWritePages*pageSize {
		return &vmi.PhysError{Addr: pa, Err: fmt.Errorf("write of %d bytes: %w", len(buf), vmi.ErrLimit)}
	}
	if t.pv {
		if err := t.syncP2M(); err != nil {
			return &vmi.PhysError{Addr: pa, Err: err}
		}
	}
	// The machine frame of every page, checked before anything is
	// stored.
	var frames []uint64
	for a, left := pa, len(buf); left > 0; {
		mfn, err := t.writeFrame(a)
		if err != nil {
			return err
		}
		frames = append(frames, mfn)
		n := min(left, int(pageSize-a%pageSize))
		left -= n
		a += uint64(n)
	}
	defer t.gen.Bump()
	for i, a := 0, pa; len(buf) > 0; i++ {
		n := min(len(buf), int(pageSize-a%pageSize))
		mem, errs, err := t.hv.MapFrames(t.domain, frames[i:i+1], true)
		if err != nil {
			return &vmi.PhysError{Addr: a, Err: t.goneOr(err)}
		}
		if errs[0] != 0 {
			t.hv.Unmap(mem)
			return &vmi.PhysError{Addr: a, Err: fmt.Errorf("Xen refused to map machine frame %#x of domain %d writable (%v; a PV guest's page tables cannot be): %w",
				frames[i], t.domain, unix.Errno(-errs[0]), vmi.ErrReadOnly)}
		}
		copy(mem[a%pageSize:], buf[:n])
		if err := t.hv.Unmap(mem); err != nil {
			return &vmi.PhysError{Addr: a, Err: fmt.Errorf("unmap machine frame %#x after writing it: %w", frames[i], err)}
		}
		buf = buf[n:]
		a += uint64(n)
	}
	return nil
}

// writeFrame returns the machine frame that holds guest-physical pa, or an
// error wrapping vmi.ErrNotPresent.
func (t *Target) writeFrame(pa uint64) (uint64, error) {
	pfn := pa / pageSize
	if !t.pv {
		if !inRanges(t.ranges, pa) {
			return 0, &vmi.PhysError{Addr: pa, Err: fmt.Errorf("guest frame %#x is not in the domain's memory map: %w", pfn, vmi.ErrNotPresent)}
		}
		return pfn, nil
	}
	if pfn >= uint64(len(t.p2m)) || t.p2m[pfn] == p2mInvalid || t.p2m[pfn]&p2mFlagBits != 0 {
		return 0, &vmi.PhysError{Addr: pa, Err: fmt.Errorf("guest frame %#x is not in the p2m: %w", pfn, vmi.ErrNotPresent)}
	}
	return t.p2m[pfn], nil
}

func inRanges(rs []vmi.Range, pa uint64) bool {
	for _, r := range rs {
		if r.Contains(pa) {
			return true
		}
	}
	return false
}
