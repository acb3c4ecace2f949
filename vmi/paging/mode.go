package paging

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Mode is an x86 paging mode.
type Mode int

const (
	// Legacy32 is 32-bit paging with CR4.PSE=1: 4 KiB and 4 MiB pages.
	Legacy32 Mode = iota + 1
	// PAE is PAE paging: 4 KiB and 2 MiB pages over 32-bit linear addresses.
	PAE
	// IA32e is 4-level paging: 48-bit canonical linear addresses.
	IA32e
	// LA57 is 5-level paging: 57-bit canonical linear addresses.
	LA57
	// Legacy32NoPSE is 32-bit paging with CR4.PSE=0, where the page-size bit
	// of a PDE is ignored and every PDE points to a page table. Rare: every
	// CPU since the Pentium has PSE and operating systems turn it on.
	Legacy32NoPSE
)

func (m Mode) String() string {
	switch m {
	case Legacy32:
		return "legacy 32-bit"
	case Legacy32NoPSE:
		return "legacy 32-bit (no PSE)"
	case PAE:
		return "PAE"
	case IA32e:
		return "4-level"
	case LA57:
		return "5-level"
	}
	return fmt.Sprintf("paging.Mode(%d)", int(m))
}

// PointerSize is the size in bytes of a kernel pointer in this mode.
func (m Mode) PointerSize() int {
	if m == IA32e || m == LA57 {
		return 8
	}
	return 4
}

// ModeFromCPU derives the paging mode from a vCPU's control registers
// (Intel SDM vol. 3A, 4.1.1, table 4-1). It fails, wrapping
// vmi.ErrUnsupported, when the CPU state is unknown or paging is off, and,
// wrapping vmi.ErrFormat, when the registers contradict each other.
func ModeFromCPU(c vmi.CPUState) (Mode, error) {
	if !c.Known {
		return 0, fmt.Errorf("paging mode: vCPU state unknown: %w", vmi.ErrUnsupported)
	}
	if c.CR0&vmi.CR0PG == 0 {
		return 0, fmt.Errorf("paging mode: paging disabled (CR0=%#x): %w", c.CR0, vmi.ErrUnsupported)
	}
	// LMA is what the CPU sets when PG=1 and LME=1; some state sources only
	// record LME, so either means IA-32e mode once paging is on.
	if c.EFER&(vmi.EFERLMA|vmi.EFERLME) != 0 {
		if c.CR4&vmi.CR4PAE == 0 {
			return 0, fmt.Errorf("paging mode: EFER=%#x selects IA-32e mode but CR4=%#x lacks PAE: %w",
				c.EFER, c.CR4, vmi.ErrFormat)
		}
		if c.CR4&vmi.CR4LA57 != 0 {
			return LA57, nil
		}
		return IA32e, nil
	}
	if c.CR4&vmi.CR4PAE != 0 {
		return PAE, nil
	}
	if c.CR4&vmi.CR4PSE != 0 {
		return Legacy32, nil
	}
	return Legacy32NoPSE, nil
}
