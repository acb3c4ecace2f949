// Package types is the one type model of the project: every source of a
// kernel's struct layouts (BTF found in guest memory, a vmlinux's BTF, DWARF,
// a Volatility ISF, the BTF of loaded modules) is loaded into the same graph
// of *Type values, and one resolver (Resolve) walks member paths over it.
//
// The model follows C as BTF describes it (https://docs.kernel.org/bpf/btf.html):
// struct, union, enum with its constants, typedef, pointer, array, integer and
// float base types with size and signedness, functions, and bitfield members.
// Qualifiers (const, volatile, restrict) and type tags are dropped by the
// loaders. Base type names are canonical (CanonicalName): "unsigned long" and
// "long unsigned int" are one type, spelled as GCC's DWARF and BTF spell it.
//
// A Graph is immutable once built and safe to share between goroutines;
// loaders may build it lazily (converting the closure of a type on first
// lookup) as long as what a lookup returns never changes afterwards.
//
// Graphs may come from hostile guest memory: a loader bounds what it reads, and
// everything here that walks a graph is bounded too (typedef chains, nesting of
// anonymous members, array indexes), so a cyclic or absurd graph yields an
// error, never a hang, a panic or an overflowed offset.
//
// This package never reads guest memory; typed views over memory are built on
// top of it (bindings), and loaders live with their formats (vmi/linux/...).
package types
