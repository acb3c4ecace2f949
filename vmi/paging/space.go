package paging

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Space is the virtual address space defined by one page-table root.
type Space struct {
	phys      vmi.PhysReader
	mode      Mode
	root      uint64
	levels    []level
	entrySize uint64 // 4 or 8 bytes
	frameMask uint64 // table and 4 KiB frame address bits of an entry
	scratch   [8]byte
	stats     CacheStats
	cache     [cacheSize]cacheEntry
}

// New returns the address space whose page tables start at root, a CR3
// value. The bits of root that are not the table base are dropped as the
// CPU does: PCID (11:0) and bits 63:52 in 4- and 5-level paging, bits 4:0
// and 63:32 in PAE paging, bits 11:0 and 63:32 in 32-bit paging.
//
// An invalid mode is not a panic: every translation then fails, wrapping
// vmi.ErrUnsupported.
func New(phys vmi.PhysReader, mode Mode, root uint64) *Space {
	s := &Space{phys: phys, mode: mode, entrySize: 8, frameMask: frame64}
	switch mode {
	case Legacy32, Legacy32NoPSE:
		s.root = root & frame32
		s.entrySize, s.frameMask = 4, frame32
		s.levels = levelsLegacy
		if mode == Legacy32NoPSE {
			s.levels = levelsLegacyNoPSE
		}
	case PAE:
		s.root = root & vmi.CR3PAE32
		s.levels = levelsPAE
	case IA32e:
		s.root = root & vmi.CR3Mask
		s.levels = levels4
	case LA57:
		s.root = root & vmi.CR3Mask
		s.levels = levels5
	}
	return s
}

// Mode is the paging mode the Space walks with.
func (s *Space) Mode() Mode { return s.mode }

// Root is the physical address of the top-level table (CR3 with its flag
// and PCID bits dropped).
func (s *Space) Root() uint64 { return s.root }

// Read fills buf from virtual address va. The range may cross pages; each
// page is translated on its own and read straight from physical memory, so
// a read within one page is one translation and one physical read. On error
// buf may be partly filled; a translation failure is returned as the
// *TranslateError for the first page that failed.
func (s *Space) Read(buf []byte, va uint64) error {
	for len(buf) > 0 {
		// Translate's hit path, written out: Read is the hottest caller.
		var pa uint64
		vpn := va >> pageShift
		if e := &s.cache[vpn&cacheMask]; e.tag == vpn+1 {
			s.stats.Hits++
			pa = e.frame | va&pageMask
		} else {
			var err error
			if pa, err = s.translateMiss(va); err != nil {
				return err
			}
		}
		n := pageSize - int(va&pageMask)
		if n > len(buf) {
			n = len(buf)
		}
		if err := s.phys.ReadPhys(buf[:n], pa); err != nil {
			return fmt.Errorf("read %d bytes at va %#x (pa %#x): %w", n, va, pa, err)
		}
		buf = buf[n:]
		va += uint64(n)
	}
	return nil
}
