package vmi

import (
	"errors"
	"fmt"
)

// A process's user address space, as OS profiles (vmi/linux) open it and
// the Lua bindings read it. The kernel's own address space is the Target's
// page walk under the kernel's root; a process's is the same walk under the
// root of its page tables (Linux: mm->pgd).

// ErrNoAddressSpace is wrapped by the error for a task that has no user
// address space: a kernel thread (Linux: task_struct.mm is NULL), or a
// task that is exiting.
var ErrNoAddressSpace = errors.New("no user address space")

// Process reads one process's virtual memory through its own page tables.
// Reads of pages that are not present fail with an error wrapping
// ErrNotPresent that says why (see PageFault).
type Process interface {
	ReadVirt(buf []byte, va uint64) error
	ReadUintVirt(va uint64, size int) (uint64, error)
	Translate(va uint64) (uint64, error)
	PointerSize() int
	Info() ProcessInfo
	// VMAs lists the memory mappings in ascending address order.
	VMAs() ([]VMA, error)
}

// ProcessOpener is implemented by guests whose OS profile can open a
// process's address space by pid or by its task (struct) address.
type ProcessOpener interface {
	OpenProcess(pid int) (Process, error)
	OpenProcessOf(task uint64) (Process, error)
}

// ProcessInfo names a process and says where its address space came from.
type ProcessInfo struct {
	PID  int
	Comm string
	Task uint64 // the task's kernel address (Linux: struct task_struct)
	MM   uint64 // its memory descriptor (Linux: struct mm_struct)
	PGD  uint64 // kernel virtual address of its top-level page table
	Root uint64 // guest-physical address of that table: the walk's root
}

// VMA is one memory mapping of a process, [Start, End).
type VMA struct {
	Start, End uint64
	Flags      uint64 // the OS's flags (Linux: vm_flags, VM_READ = 1, ...)
	PgOff      uint64 // offset in the file, in pages (anonymous memory: its own start, in pages)
	FileAddr   uint64 // the mapped file (Linux: struct file); 0 for anonymous memory
	File       string // the mapped file's path; "" for anonymous memory
	FileErr    string // why File could not be read, if it could not
}

// PageFaultReason says why a process's page could not be read.
type PageFaultReason int

const (
	// FaultNotMapped: no mapping (VMA) covers the address.
	FaultNotMapped PageFaultReason = iota + 1
	// FaultNotFaulted: mapped, but no page is there (never touched, or
	// dropped): the page tables hold no entry for it.
	FaultNotFaulted
	// FaultSwappedOut: the page-table entry holds a swap entry.
	FaultSwappedOut
	// FaultProtNone: the page is mapped PROT_NONE (or marked for NUMA
	// balancing): present to the kernel, not to the CPU.
	FaultProtNone
)

func (r PageFaultReason) String() string {
	switch r {
	case FaultNotMapped:
		return "not mapped (no mapping covers it)"
	case FaultNotFaulted:
		return "not faulted in (mapped, but never touched or dropped: no page-table entry)"
	case FaultSwappedOut:
		return "swapped out"
	case FaultProtNone:
		return "mapped PROT_NONE (or marked for NUMA balancing)"
	}
	return "not present"
}

// PageFault reports a read of a process's page that is not present. It
// wraps ErrNotPresent and the page walk's own error (which names the
// table level and entry).
type PageFault struct {
	PID    int
	Comm   string
	VA     uint64
	Reason PageFaultReason
	Entry  uint64 // the last page-table entry the walk read (a swap entry when swapped out)
	Err    error  // the translation error
}

func (e *PageFault) Error() string {
	s := fmt.Sprintf("process %d (%s): page at %#x not present: %v", e.PID, e.Comm, e.VA, e.Reason)
	if e.Reason == FaultSwappedOut {
		s += fmt.Sprintf(" (swap entry %#x)", e.Entry)
	}
	return s
}

// Unwrap gives ErrNotPresent and the walk's error.
func (e *PageFault) Unwrap() []error { return []error{ErrNotPresent, e.Err} }
