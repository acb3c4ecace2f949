package vmi

import "fmt"

// PhysReader reads guest-physical memory. ReadPhys fills all of buf from
// guest-physical address pa or returns an error; a short read is an error.
// Reading a range that is not backed by RAM in the target (a hole) fails
// with an error that wraps ErrNotPresent.
type PhysReader interface {
	ReadPhys(buf []byte, pa uint64) error
}

// Range is a half-open range [Start, End) of guest-physical addresses.
type Range struct {
	Start, End uint64
}

func (r Range) String() string { return fmt.Sprintf("[%#x-%#x)", r.Start, r.End) }

// Len is the number of bytes in r.
func (r Range) Len() uint64 { return r.End - r.Start }

// Contains reports whether pa lies in r.
func (r Range) Contains(pa uint64) bool { return pa >= r.Start && pa < r.End }

// CPUState is the part of a vCPU's state that address translation needs.
// Known is false when the target carries no CPU state (a raw image): then
// the other fields are zero and the kernel page-table root must come from the
// profile.
type CPUState struct {
	Known bool
	CR0   uint64
	CR3   uint64
	CR4   uint64
	EFER  uint64
}

// Control-register bits used to choose a paging mode (Intel SDM vol. 3A, 2.5).
const (
	CR0PG    = 1 << 31
	CR4PSE   = 1 << 4
	CR4PAE   = 1 << 5
	CR4LA57  = 1 << 12
	EFERLME  = 1 << 8
	EFERLMA  = 1 << 10
	EFERNXE  = 1 << 11
	CR3Mask  = 0x000f_ffff_ffff_f000 // page-table base in CR3 (IA-32e, PCID bits dropped)
	CR3PAE32 = 0xffff_ffe0           // PDPT base in CR3 under PAE
)

// Target is a guest: physical memory, its map, and vCPU state.
// Implementations must be safe for use by one goroutine at a time; callers
// that share a Target across goroutines serialise access themselves.
type Target interface {
	PhysReader
	// MemoryMap lists the guest-physical ranges backed by memory, sorted and
	// non-overlapping.
	MemoryMap() []Range
	// CPU returns vCPU 0's state, with Known false when there is none.
	CPU() CPUState
	// Kind names the target for messages ("ELF core", "raw image", ...).
	Kind() string
	Close() error
}

// PageSize is the size of the pages a PageMapper hands out.
const PageSize = 4096

// PageMapper is implemented by targets that hold guest memory in the host's
// address space (a mapped dump file, a shared memory-backend file). The page
// walker caches the page it returns next to the translation, so a small
// cached read is a copy from host memory with no interface call.
type PageMapper interface {
	// PhysPage returns the 4 KiB guest-physical page that contains pa, or
	// nil when that page is not wholly backed by host memory (a hole, a
	// zero-filled tail) or the target will not hand it out now: callers
	// then use ReadPhys. Its contents follow the guest's. The page may be
	// used until the target's generation moves (see Generationer; for a
	// target that is not one, until it is closed), and no longer: reads
	// through it bypass the checks of ReadPhys.
	PhysPage(pa uint64) *[PageSize]byte
}

// KernelInfo says how a guest was opened and where its kernel was found:
// what `xascript info` prints and guest_info() returns to scripts.
type KernelInfo struct {
	Target        string // "ELF core (QEMU)", "raw image", ...
	Paging        string // "4-level", "PAE", ...
	Root          uint64 // page-table root (a CR3 value)
	RootSource    string
	Banner        string
	TextPhys      uint64 // physical address of _text
	KASLRVirtual  int64  // run-time _text minus its default address
	KASLRPhysical int64  // physical _text minus the default load address
	SymbolShift   int64  // added to the symbol file's addresses
	Symbols       int
	SymbolsFrom   string // a file, or how they were derived from memory
	TypesFrom     string // likewise for struct layouts; "" when there are none
	Notes         []string
}

// FrameTranslator is implemented by targets whose page tables hold machine
// frame numbers instead of guest-physical ones: Xen PV guests, which
// write real machine frames into their PTEs while their own view of memory
// (and ours) is pseudo-physical. The page walker passes every frame it
// reads from an entry through PhysFrame; the target's CPU state already
// holds a guest-physical CR3.
type FrameTranslator interface {
	// MachineFrames reports whether the page tables hold machine frames:
	// false means no translation is needed (a Xen PVH or HVM guest).
	MachineFrames() bool
	// PhysFrame returns the guest-physical frame backed by machine frame
	// mfn, or false when the guest does not own that frame.
	PhysFrame(mfn uint64) (pfn uint64, ok bool)
}
