package dump

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Writes. A dump is writable when it was opened with Options.Writable and
// its file is not compressed: the file is then mapped shared and writable,
// and a write is a copy into the mapping, which the kernel writes back to
// the file. Reads (and pages handed out by PhysPage) are views of the same
// mapping, so they see a write at once. Compressed dumps are read from a
// decompressed copy in the cache: a write there would change the cache,
// not the dump, so they refuse.

var (
	_ vmi.Writer       = (*Dump)(nil)
	_ vmi.Generationer = (*Dump)(nil)
)

// Writable implements vmi.Writer: nil when writes reach the dump file.
func (d *Dump) Writable() error {
	switch {
	case d.closed:
		return errClosed
	case d.file == nil:
		return vmi.Detailed(nil, vmi.ErrReadOnly, "dump %s is held in memory, not in a file: it cannot be written", d.name)
	case d.compression != "":
		// A write would change the decompressed copy in the cache, not
		// the dump.
		return vmi.Detailed(nil, vmi.ErrReadOnly, "this target cannot be written: %s is compressed; decompress it (%s -d) and give that file",
			d.path, d.compression)
	case !d.file.Writable():
		return vmi.Detailed(nil, vmi.ErrReadOnly, "dump %s was opened read-only", d.name)
	}
	return nil
}

// WritePhys implements vmi.Writer: it stores buf at guest-physical pa in
// the dump file. Every byte must be held in the file: a hole fails with
// vmi.ErrNotPresent, and the zero-filled tail of an ELF segment (bytes the
// file does not hold) with vmi.ErrReadOnly; either way nothing is written.
// A write moves the dump's generation.
func (d *Dump) WritePhys(buf []byte, pa uint64) error {
	if err := d.Writable(); err != nil {
		return &vmi.PhysError{Addr: pa, Err: err}
	}
	if err := d.mem.writePhys(buf, pa); err != nil {
		return err
	}
	d.gen.Bump()
	return nil
}

// Generation implements vmi.Generationer. It moves only when the dump is
// written: what a cache derived from the written bytes (a translation
// through a page table that was changed) must be derived again.
func (d *Dump) Generation() *vmi.Generation { return &d.gen }

// writePhys stores buf at guest-physical pa, crossing segment boundaries.
// It checks the whole range first, so that a write that fails stores
// nothing.
func (m *memory) writePhys(buf []byte, pa uint64) error {
	for pass := 0; pass < 2; pass++ {
		p, a := buf, pa
		for len(p) > 0 {
			i := m.find(a)
			if i < 0 {
				return &vmi.PhysError{Addr: a, Err: vmi.ErrNotPresent}
			}
			s := &m.segs[i]
			rel := a - s.start
			n := min(s.end-a, uint64(len(p)))
			if rel >= s.fileLen || s.fileLen-rel < n {
				bad := a + max(s.fileLen, rel) - rel
				return &vmi.PhysError{Addr: bad, Err: fmt.Errorf("not stored in the dump file (the zero-filled tail of a segment): %w", vmi.ErrReadOnly)}
			}
			if pass == 1 {
				copy(m.data[s.off+rel:s.off+rel+n], p[:n])
			}
			p = p[n:]
			a += n // cannot wrap: a+n <= s.end
		}
	}
	return nil
}
