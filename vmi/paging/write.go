package paging

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Write stores buf at virtual address va, through the same page tables as
// Read: each page is translated on its own, so a write that spans pages
// splits into one physical write per page. Every page is translated before
// any byte is stored, so a write that runs into an unmapped page stores
// nothing (the *TranslateError names it).
//
// The bytes go through the target's vmi.Writer, never through a host page
// the cache holds: those may be mapped read-only. Pages handed out by the
// target are views of the same memory and see the write; the target moves
// its generation, so that translations through page tables the write may
// have changed are walked again.
func (s *Space) Write(buf []byte, va uint64) error {
	w, ok := s.phys.(vmi.Writer)
	if !ok {
		return fmt.Errorf("write at va %#x: this target cannot be written: %w", va, vmi.ErrReadOnly)
	}
	if err := w.Writable(); err != nil {
		return fmt.Errorf("write at va %#x: %w", va, err)
	}
	for pass := 0; pass < 2; pass++ {
		p, a := buf, va
		for len(p) > 0 {
			pa, err := s.Translate(a)
			if err != nil {
				return err
			}
			n := min(pageSize-int(a&pageMask), len(p))
			if pass == 1 {
				if err := w.WritePhys(p[:n], pa); err != nil {
					return fmt.Errorf("write %d bytes at va %#x (pa %#x): %w", n, a, pa, err)
				}
			}
			p = p[n:]
			a += uint64(n)
		}
	}
	return nil
}
