package paging

import (
	"encoding/binary"

	"github.com/xascript/xascript/vmi"
)

// refResult is what the reference walker concludes.
type refResult struct {
	pa     uint64
	size   uint64
	ok     bool
	level  Level // where it failed
	format bool  // failed on a reserved bit (else: not present / unreadable)
}

// refTranslate is a slow, literal reading of SDM vol. 3A chapter 4, kept
// separate from the package's table-driven walker so the two can be checked
// against each other.
func refTranslate(m vmi.PhysReader, mode Mode, cr3, va uint64) refResult {
	rd := func(pa uint64, n int) (uint64, bool) {
		b := make([]byte, n)
		if m.ReadPhys(b, pa) != nil {
			return 0, false
		}
		if n == 4 {
			return uint64(binary.LittleEndian.Uint32(b)), true
		}
		return binary.LittleEndian.Uint64(b), true
	}
	fail := func(l Level) refResult { return refResult{level: l} }
	const addr52 = 0x000f_ffff_ffff_f000

	switch mode {
	case Legacy32, Legacy32NoPSE:
		if va > 0xffff_ffff {
			return fail(LevelAddress)
		}
		pde, ok := rd(cr3&0xffff_f000|(va>>22)<<2, 4)
		if !ok || pde&1 == 0 {
			return fail(LevelPD)
		}
		if mode == Legacy32 && pde&0x80 != 0 {
			pa := pde&0xffc0_0000 | (pde>>13&0xff)<<32 | va&0x3f_ffff
			return refResult{pa: pa, size: 4 << 20, ok: true}
		}
		pte, ok := rd(pde&0xffff_f000|(va>>12&0x3ff)<<2, 4)
		if !ok || pte&1 == 0 {
			return fail(LevelPT)
		}
		return refResult{pa: pte&0xffff_f000 | va&0xfff, size: 4096, ok: true}

	case PAE:
		if va > 0xffff_ffff {
			return fail(LevelAddress)
		}
		pdpte, ok := rd(cr3&0xffff_ffe0+(va>>30)*8, 8)
		if !ok || pdpte&1 == 0 {
			return fail(LevelPDPT)
		}
		pde, ok := rd(pdpte&addr52+(va>>21&0x1ff)*8, 8)
		if !ok || pde&1 == 0 {
			return fail(LevelPD)
		}
		if pde&0x80 != 0 {
			return refResult{pa: pde&0x000f_ffff_ffe0_0000 | va&0x1f_ffff, size: 2 << 20, ok: true}
		}
		pte, ok := rd(pde&addr52+(va>>12&0x1ff)*8, 8)
		if !ok || pte&1 == 0 {
			return fail(LevelPT)
		}
		return refResult{pa: pte&addr52 | va&0xfff, size: 4096, ok: true}

	case IA32e, LA57:
		bits := uint(48)
		if mode == LA57 {
			bits = 57
		}
		// Canonical: sign-extending the low bits gives back va.
		if uint64(int64(va<<(64-bits))>>(64-bits)) != va {
			return fail(LevelAddress)
		}
		table := cr3 & addr52
		if mode == LA57 {
			e, ok := rd(table+(va>>48&0x1ff)*8, 8)
			if !ok || e&1 == 0 {
				return fail(LevelPML5)
			}
			if e&0x80 != 0 {
				return refResult{level: LevelPML5, format: true}
			}
			table = e & addr52
		}
		e, ok := rd(table+(va>>39&0x1ff)*8, 8)
		if !ok || e&1 == 0 {
			return fail(LevelPML4)
		}
		if e&0x80 != 0 {
			return refResult{level: LevelPML4, format: true}
		}
		e, ok = rd(e&addr52+(va>>30&0x1ff)*8, 8)
		if !ok || e&1 == 0 {
			return fail(LevelPDPT)
		}
		if e&0x80 != 0 {
			return refResult{pa: e&0x000f_ffff_c000_0000 | va&0x3fff_ffff, size: 1 << 30, ok: true}
		}
		e, ok = rd(e&addr52+(va>>21&0x1ff)*8, 8)
		if !ok || e&1 == 0 {
			return fail(LevelPD)
		}
		if e&0x80 != 0 {
			return refResult{pa: e&0x000f_ffff_ffe0_0000 | va&0x1f_ffff, size: 2 << 20, ok: true}
		}
		e, ok = rd(e&addr52+(va>>12&0x1ff)*8, 8)
		if !ok || e&1 == 0 {
			return fail(LevelPT)
		}
		return refResult{pa: e&addr52 | va&0xfff, size: 4096, ok: true}
	}
	return fail(LevelAddress)
}
