package paging

import (
	"fmt"

	"github.com/xascript/xascript/vmi"
)

// Level names a paging-structure level. The numbers follow the SDM: a
// level-N entry maps 2^(12+9*(N-1)) bytes in the 64-bit formats.
type Level int

const (
	// LevelAddress is no table at all: the linear address itself was rejected
	// (non-canonical, or wider than 32 bits in a 32-bit mode).
	LevelAddress Level = 0
	LevelPT      Level = 1
	LevelPD      Level = 2
	LevelPDPT    Level = 3
	LevelPML4    Level = 4
	LevelPML5    Level = 5
)

func (l Level) String() string {
	switch l {
	case LevelAddress:
		return "linear address"
	case LevelPT:
		return "PT"
	case LevelPD:
		return "PD"
	case LevelPDPT:
		return "PDPT"
	case LevelPML4:
		return "PML4"
	case LevelPML5:
		return "PML5"
	}
	return fmt.Sprintf("level %d", int(l))
}

// ErrNonCanonical is wrapped by the error for a linear address the mode
// cannot express: non-canonical in 4- and 5-level paging, above 4 GiB in the
// 32-bit modes. It wraps vmi.ErrNotPresent, because such an address maps
// nothing, exactly like an unmapped one; callers that skip unreadable
// pointers need no special case.
var ErrNonCanonical error = &wrapped{"non-canonical address", vmi.ErrNotPresent}

// wrapped is a sentinel error that is also another sentinel, without
// repeating the other's text in its message.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// errPSReserved reports a page-size bit where the SDM reserves it.
var errPSReserved error = &wrapped{"reserved page-size bit 7 set", vmi.ErrFormat}

// TranslateError reports a failed translation: which virtual address, at
// which level the walk stopped, and the entry it found there.
//
// Err is vmi.ErrNotPresent for a non-present entry, an error wrapping
// vmi.ErrFormat for a reserved-bit violation, an error wrapping
// ErrNonCanonical when Level is LevelAddress, or the error from the physical
// read of the entry (which wraps vmi.ErrNotPresent for holes in RAM). In the
// last case Entry is zero and meaningless.
type TranslateError struct {
	VA        uint64
	Level     Level
	EntryAddr uint64 // guest-physical address of the entry
	Entry     uint64 // the entry's value
	Err       error

	readFailed bool // the entry itself could not be read
}

func (e *TranslateError) Error() string {
	switch {
	case e.Level == LevelAddress:
		return fmt.Sprintf("translate %#x: %v", e.VA, e.Err)
	case e.readFailed:
		return fmt.Sprintf("translate %#x: reading %v entry at pa %#x: %v", e.VA, e.Level, e.EntryAddr, e.Err)
	case e.Err == vmi.ErrNotPresent:
		return fmt.Sprintf("translate %#x: %v entry at pa %#x = %#x not present", e.VA, e.Level, e.EntryAddr, e.Entry)
	}
	return fmt.Sprintf("translate %#x: %v entry at pa %#x = %#x: %v", e.VA, e.Level, e.EntryAddr, e.Entry, e.Err)
}

func (e *TranslateError) Unwrap() error { return e.Err }
