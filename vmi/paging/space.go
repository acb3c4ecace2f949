package paging

import (
	"encoding/binary"
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Space is the virtual address space defined by one page-table root.
type Space struct {
	phys      vmi.PhysReader
	mapper    vmi.PageMapper      // phys, when it maps guest pages into host memory
	machine   vmi.FrameTranslator // phys, when its page tables hold machine frames (Xen PV)
	mode      Mode
	root      uint64
	levels    []level
	entrySize uint64 // 4 or 8 bytes
	frameMask uint64 // table and 4 KiB frame address bits of an entry
	scratch   [8]byte
	stats     CacheStats
	// gen is the target's generation (vmi.Generationer), or a counter that
	// never moves for targets that never change; seen is the generation
	// the cache was filled under. A hit needs gen.Load() == seen.
	gen   *vmi.Generation
	seen  uint64
	cache [cacheSize]cacheEntry
}

// frozen is the generation of targets that are not vmi.Generationers: it is
// never bumped.
var frozen vmi.Generation

// New returns the address space whose page tables start at root, a CR3
// value. The bits of root that are not the table base are dropped as the
// CPU does: PCID (11:0) and bits 63:52 in 4- and 5-level paging, bits 4:0
// and 63:32 in PAE paging, bits 11:0 and 63:32 in 32-bit paging.
//
// An invalid mode is not a panic: every translation then fails, wrapping
// vmi.ErrUnsupported.
func New(phys vmi.PhysReader, mode Mode, root uint64) *Space {
	s := &Space{phys: phys, mode: mode, entrySize: 8, frameMask: frame64}
	s.mapper, _ = phys.(vmi.PageMapper)
	s.gen = &frozen
	if g, ok := phys.(vmi.Generationer); ok {
		s.gen = g.Generation()
	}
	s.seen = s.gen.Load()
	if ft, ok := phys.(vmi.FrameTranslator); ok && ft.MachineFrames() {
		s.machine = ft
	}
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
// page is translated on its own and read straight from physical memory (from
// host memory when the target maps its pages, see vmi.PageMapper), so a read
// within one page is one translation and one copy. On error
// buf may be partly filled; a translation failure is returned as the
// *TranslateError for the first page that failed.
func (s *Space) Read(buf []byte, va uint64) error {
	for len(buf) > 0 {
		// Translate's hit path, written out: Read is the hottest caller.
		vpn := va >> pageShift
		e := &s.cache[vpn&cacheMask]
		if e.tag == vpn+1 && s.gen.Load() == s.seen {
			s.stats.Hits++
		} else if _, err := s.translateMiss(va); err != nil {
			return err
		} // translateMiss filled e
		off := int(va & pageMask)
		n := min(pageSize-off, len(buf))
		if e.host != nil {
			copy(buf[:n], e.host[off:])
		} else if err := s.phys.ReadPhys(buf[:n], e.frame|uint64(off)); err != nil {
			pa := e.frame | uint64(off)
			return fmt.Errorf("read %d bytes at va %#x (pa %#x): %w", n, va, pa, err)
		}
		buf = buf[n:]
		va += uint64(n)
	}
	return nil
}

// ReadUint reads a little-endian unsigned integer of size 1, 2, 4 or 8
// bytes at va. It is Read without the buffer: the path scripts take for
// every field they read, so a cached, host-mapped read is one lookup and one
// load.
func (s *Space) ReadUint(va uint64, size int) (uint64, error) {
	vpn := va >> pageShift
	e := &s.cache[vpn&cacheMask]
	off := int(va & pageMask)
	// The generation first: checked last, the compiler materialises the
	// whole condition in a register and the hit path gets slower.
	if s.gen.Load() == s.seen && e.tag == vpn+1 && e.host != nil && off+size <= pageSize {
		s.stats.Hits++
		p := e.host[off:]
		switch size {
		case 1:
			return uint64(p[0]), nil
		case 2:
			return uint64(binary.LittleEndian.Uint16(p)), nil
		case 4:
			return uint64(binary.LittleEndian.Uint32(p)), nil
		case 8:
			return binary.LittleEndian.Uint64(p), nil
		}
	}
	var buf [8]byte
	if size != 1 && size != 2 && size != 4 && size != 8 {
		return 0, fmt.Errorf("read at va %#x: unsupported integer size %d", va, size)
	}
	if err := s.Read(buf[:size], va); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(buf[:]), nil
}
