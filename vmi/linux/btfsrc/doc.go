// Package btfsrc answers struct layout questions (member offsets, sizes,
// member types) from a kernel's BTF.
//
// BTF (https://docs.kernel.org/bpf/btf.html) is the compact type format the
// kernel carries in its .BTF section (and exports at /sys/kernel/btf/vmlinux).
// Load accepts a vmlinuz (the vmlinux is extracted once and its .BTF blob is
// cached through internal/unpack.Derived), a vmlinux ELF, or a raw BTF blob,
// each possibly compressed.
//
// Why not decode with cilium/ebpf/btf: its LoadSpec indexes every type name
// (~20 ms for Debian's 4 MB BTF) and TypeByName("module") inflates every type
// reachable from struct module (~10 ms), which alone would eat the 50 ms a
// whole xascript run may take. This package reads the mmapped blob in place:
// a one-pass index of type offsets built on first use (~1 ms), names found
// by searching the string table, and only the types a question touches are
// decoded. The decoded types are a loader's output into the project's one
// type graph (vmi/types; Graph): a lookup converts the closure of the type it
// finds, once, and member paths are resolved by types.Resolve, the resolver
// every source shares. cilium stays the reference: CrossCheck decodes a blob
// with both and compares the graph with cilium's types, which tests do on
// real kernels and which a profile derived from guest memory does once,
// before its BTF is trusted and cached (vmi/linux).
//
// The blob is untrusted: every offset is bounds-checked and every walk over
// the type graph has a depth bound, so hostile BTF yields errors, not panics
// or endless loops.
package btfsrc
