package vmi

// Writer is implemented by targets that can change guest memory: raw and
// uncompressed dumps opened writable, live QEMU and Xen guests opened with
// writes allowed. It is one capability, like Pauser; a target's type may
// implement it and still refuse, because whether memory may be written is
// decided when the target is opened (xascript's --allow-write), not by its
// type: a target opened read-only, or one whose format cannot hold a write
// (a compressed dump is decompressed into a cache copy), fails every write
// with an error that wraps ErrReadOnly.
//
// A write that succeeds moves the target's Generation (every writable
// target is a Generationer): the bytes written may be page tables, a p2m or
// anything else a cache over the target derived, so every cache drops what
// it derived and reads again. Caches of the bytes themselves (pages handed
// out by a PageMapper, mapped frames) are views of the same memory and see
// the write at once.
type Writer interface {
	// WritePhys stores buf at guest-physical address pa. The whole range
	// is checked before any byte is stored, so a write that would cross
	// into a hole (ErrNotPresent) or into bytes the target cannot change
	// (ErrReadOnly) stores nothing.
	WritePhys(buf []byte, pa uint64) error
	// Writable returns nil when WritePhys may succeed, else why not (an
	// error wrapping ErrReadOnly): a script can be told before it writes.
	Writable() error
}
