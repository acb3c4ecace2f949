package paging

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
)

const (
	pageShift = 12
	pageSize  = 1 << pageShift
	pageMask  = pageSize - 1

	entryP  = 1 << 0 // present
	entryPS = 1 << 7 // page size: this entry maps a page, not a table

	// frame64 selects a table or 4 KiB frame address in a 64-bit entry (PAE,
	// 4- and 5-level). The SDM allows up to 52 physical bits; bits above
	// MAXPHYADDR would fault on hardware, but MAXPHYADDR is not known here,
	// so all 52 are honoured (lenient) and bits 62:52 (ignored, protection
	// keys) and 63 (XD) are dropped.
	frame64 = 0x000f_ffff_ffff_f000
	// frame32 selects a table or 4 KiB frame address in a 32-bit entry.
	frame32 = 0xffff_f000
	// pse36Base selects physical bits 31:22 of a 4 MiB page in a 32-bit PDE;
	// bits 20:13 hold physical bits 39:32 (PSE-36, SDM 4.3 table 4-4).
	pse36Base = 0xffc0_0000

	maxLevels = 5
)

// level describes one paging-structure level of a mode.
type level struct {
	lvl   Level
	shift uint   // lowest linear-address bit of this level's index
	index uint64 // mask for the index after shifting
	// large: PS=1 here maps a page of 1<<shift bytes.
	large bool
	// psReserved: PS=1 here is a reserved-bit violation (PML4E, PML5E).
	psReserved bool
}

var (
	levelsLegacy = []level{
		{lvl: LevelPD, shift: 22, index: 0x3ff, large: true},
		{lvl: LevelPT, shift: 12, index: 0x3ff},
	}
	// Without CR4.PSE the PS bit of a PDE is ignored (SDM 4.3).
	levelsLegacyNoPSE = []level{
		{lvl: LevelPD, shift: 22, index: 0x3ff},
		{lvl: LevelPT, shift: 12, index: 0x3ff},
	}
	// PAE PDPTEs have no PS bit; bit 7 is reserved there, and a guest that
	// set it could not have loaded CR3, so it is ignored.
	levelsPAE = []level{
		{lvl: LevelPDPT, shift: 30, index: 0x3},
		{lvl: LevelPD, shift: 21, index: 0x1ff, large: true},
		{lvl: LevelPT, shift: 12, index: 0x1ff},
	}
	levels5 = []level{
		{lvl: LevelPML5, shift: 48, index: 0x1ff, psReserved: true},
		{lvl: LevelPML4, shift: 39, index: 0x1ff, psReserved: true},
		{lvl: LevelPDPT, shift: 30, index: 0x1ff, large: true},
		{lvl: LevelPD, shift: 21, index: 0x1ff, large: true},
		{lvl: LevelPT, shift: 12, index: 0x1ff},
	}
	levels4 = levels5[1:]
)

// Step is one paging-structure entry visited by a walk.
type Step struct {
	Level     Level
	EntryAddr uint64 // guest-physical address of the entry
	Entry     uint64 // its value (zero if it could not be read)
}

// Walk records one translation, for diagnostics: every entry visited, top
// level first, and the page it ended in.
type Walk struct {
	VA       uint64
	Mode     Mode
	Steps    []Step
	PageSize uint64 // 4 KiB, 2 MiB, 4 MiB or 1 GiB; 0 when the walk failed
	PA       uint64 // the translation; valid when PageSize is not 0
}

func (w Walk) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "va %#x (%v paging, %d levels visited)\n", w.VA, w.Mode, len(w.Steps))
	for _, st := range w.Steps {
		fmt.Fprintf(&b, "  %-4v entry at pa %#x = %#x\n", st.Level, st.EntryAddr, st.Entry)
	}
	if w.PageSize != 0 {
		fmt.Fprintf(&b, "  -> pa %#x in a %s page\n", w.PA, sizeName(w.PageSize))
	}
	return b.String()
}

func sizeName(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// trace collects the steps of a walk without allocating.
type trace struct {
	steps [maxLevels]Step
	n     int
}

// Walk translates va like Translate, bypassing the cache, and reports every
// entry it visited. On failure the Walk holds the steps up to and including
// the one that stopped it, and the error is the *TranslateError Translate
// would return.
func (s *Space) Walk(va uint64) (Walk, error) {
	var t trace
	pa, size, err := s.walk(va, &t)
	w := Walk{VA: va, Mode: s.mode, Steps: append([]Step(nil), t.steps[:t.n]...)}
	if err == nil {
		w.PA, w.PageSize = pa, size
	}
	return w, err
}

// checkVA rejects linear addresses the mode cannot express.
func (s *Space) checkVA(va uint64) error {
	switch s.mode {
	case IA32e:
		if top := int64(va) >> 47; top != 0 && top != -1 {
			return fmt.Errorf("%w for 4-level paging (bits 63:47 must all equal bit 47)", ErrNonCanonical)
		}
	case LA57:
		if top := int64(va) >> 56; top != 0 && top != -1 {
			return fmt.Errorf("%w for 5-level paging (bits 63:56 must all equal bit 56)", ErrNonCanonical)
		}
	default:
		if va>>32 != 0 {
			return fmt.Errorf("%w for %v paging (wider than 32 bits)", ErrNonCanonical, s.mode)
		}
	}
	return nil
}

// walk translates va by reading the page tables, recording into t when it
// is not nil. It returns the physical address and the size of the page.
func (s *Space) walk(va uint64, t *trace) (pa, size uint64, err error) {
	if s.levels == nil {
		return 0, 0, &TranslateError{VA: va, Level: LevelAddress,
			Err: fmt.Errorf("invalid paging mode %v: %w", s.mode, vmi.ErrUnsupported)}
	}
	if err := s.checkVA(va); err != nil {
		return 0, 0, &TranslateError{VA: va, Level: LevelAddress, Err: err}
	}
	table := s.root
	// The loop is bounded by the mode's fixed number of levels, whatever
	// the entries say.
	for i := range s.levels {
		l := &s.levels[i]
		addr := table + ((va>>l.shift)&l.index)*s.entrySize
		e, rerr := s.readEntry(addr)
		if t != nil && t.n < len(t.steps) {
			t.steps[t.n] = Step{Level: l.lvl, EntryAddr: addr, Entry: e}
			t.n++
		}
		if rerr != nil {
			return 0, 0, &TranslateError{VA: va, Level: l.lvl, EntryAddr: addr, Err: rerr, readFailed: true}
		}
		if e&entryP == 0 {
			return 0, 0, &TranslateError{VA: va, Level: l.lvl, EntryAddr: addr, Entry: e, Err: vmi.ErrNotPresent}
		}
		if l.lvl == LevelPT {
			frame, err := s.guestFrame(e & s.frameMask)
			if err != nil {
				return 0, 0, &TranslateError{VA: va, Level: l.lvl, EntryAddr: addr, Entry: e, Err: err}
			}
			return frame | va&pageMask, pageSize, nil
		}
		if e&entryPS != 0 {
			if l.psReserved {
				return 0, 0, &TranslateError{VA: va, Level: l.lvl, EntryAddr: addr, Entry: e, Err: errPSReserved}
			}
			if l.large && s.machine != nil {
				// Machine frames need not be contiguous, so a large page
				// of machine memory has no guest-physical meaning (Xen
				// does not give PV guests superpages).
				return 0, 0, &TranslateError{VA: va, Level: l.lvl, EntryAddr: addr, Entry: e,
					Err: fmt.Errorf("large page in page tables of machine frames: %w", vmi.ErrUnsupported)}
			}
			if l.large {
				size = 1 << l.shift
				var base uint64
				if s.entrySize == 4 {
					base = e&pse36Base | (e>>13&0xff)<<32
				} else {
					// Bits shift-1:13 are reserved and bit 12 is PAT in a
					// large-page entry; dropping them is the lenient choice.
					base = e & frame64 &^ (size - 1)
				}
				return base | va&(size-1), size, nil
			}
		}
		table, err = s.guestFrame(e & s.frameMask)
		if err != nil {
			return 0, 0, &TranslateError{VA: va, Level: l.lvl, EntryAddr: addr, Entry: e, Err: err}
		}
	}
	// Unreachable: every level list ends with LevelPT.
	return 0, 0, &TranslateError{VA: va, Level: LevelAddress,
		Err: fmt.Errorf("walk did not end at a page table: %w", vmi.ErrFormat)}
}

// guestFrame turns the frame address of an entry into a guest-physical
// one: unchanged, except for targets whose page tables hold machine
// frames.
func (s *Space) guestFrame(addr uint64) (uint64, error) {
	if s.machine == nil {
		return addr, nil
	}
	pfn, ok := s.machine.PhysFrame(addr / pageSize)
	if !ok {
		return 0, fmt.Errorf("machine frame %#x is not the guest's: %w", addr/pageSize, vmi.ErrNotPresent)
	}
	return pfn * pageSize, nil
}

// readEntry reads one paging-structure entry, little-endian.
func (s *Space) readEntry(pa uint64) (uint64, error) {
	b := s.scratch[:s.entrySize]
	if err := s.phys.ReadPhys(b, pa); err != nil {
		return 0, err
	}
	if s.entrySize == 4 {
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	return binary.LittleEndian.Uint64(b), nil
}
