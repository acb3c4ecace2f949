package bindings

import "github.com/xascript/xascript/vmi/types"

// Guest is the target a script introspects: a kernel's virtual address
// space, the physical memory under it, and the profile (symbols and types)
// that names things in it. vmi/linux.Kernel implements it.
type Guest interface {
	// ReadVirt fills buf from kernel virtual address va.
	ReadVirt(buf []byte, va uint64) error
	// ReadUintVirt reads a little-endian integer of 1, 2, 4 or 8 bytes at
	// kernel virtual address va: the hot path of read_u32 and friends.
	ReadUintVirt(va uint64, size int) (uint64, error)
	// ReadPhys fills buf from guest-physical address pa.
	ReadPhys(buf []byte, pa uint64) error
	// Translate maps a kernel virtual address to a guest-physical one.
	Translate(va uint64) (uint64, error)
	// PointerSize is the guest's pointer width in bytes (4 or 8).
	PointerSize() int
	// Symbol is a kernel symbol's run-time address (KASLR slide applied).
	Symbol(name string) (uint64, error)
	// Offsetof is the byte offset of a (possibly nested, dotted) member.
	Offsetof(structName, member string) (uint64, error)
	// Sizeof is a type's size in bytes.
	Sizeof(typeName string) (uint64, error)
}

// GuestWriter is implemented by guests whose memory a script may change
// (vmi/linux.Kernel over a vmi.Writer target). The write bindings use it
// only when xascript runs with --allow-write (Env.AllowWrite).
type GuestWriter interface {
	// WriteVirt stores buf at kernel virtual address va.
	WriteVirt(buf []byte, va uint64) error
	// WritePhys stores buf at guest-physical address pa.
	WritePhys(buf []byte, pa uint64) error
	// Writable returns nil when the target may be written, else why not.
	Writable() error
}

// TypedGuest is a Guest whose struct layouts are a type graph (vmi/types):
// typed views and the container iterators (views.go, iter.go) need one; a
// Guest without it runs every other binding. linux.Kernel has it.
type TypedGuest interface {
	Types() (types.Graph, error)
}
