// Package dwarfsrc answers struct layout questions (member offsets, sizes)
// from the DWARF debugging information of a kernel's vmlinux, for kernels
// built without BTF: Debian's i386 686-pae kernel, for one, whose -dbg
// package ships a vmlinux with DWARF 5.
//
// Specification: DWARF Debugging Information Format, Version 5
// (https://dwarfstd.org/dwarf5std.html); entries are decoded by the standard
// library's debug/dwarf (https://pkg.go.dev/debug/dwarf).
//
// A Debian vmlinux has ~150 MB of .debug_info in ~2,200 compile units, each
// repeating the types it uses, and no name index. Building debug/dwarf's
// view of the whole section alone takes ~0.2 s, decoding its types seconds.
// So this package never does either on the normal path:
//
//   - the sections are slices of the mapped file (debug/elf is used for
//     section headers only), and each compile unit gets its own small
//     dwarf.Data when a question first reaches into it;
//   - the first use of a file scans the top-level entries of all units
//     once, in parallel, for the first complete definition of each named
//     struct, union, enum, typedef and base type, and persists that index
//     (internal/unpack.Derived); later runs binary-search it in place;
//   - a question decodes only the entries it touches, memoized.
//
// Object files (whose DWARF needs relocating), compressed debug sections
// and units that refer across units (DW_FORM_ref_addr) fall back to one
// dwarf.Data over everything, built by debug/elf.
//
// It is a loader into the project's one type graph (vmi/types; Graph):
// a lookup converts the closure of the type it finds (base types with their
// encoding's signedness, enums with their constants, declarations resolved to
// the definition in another unit, multi-dimensional arrays as arrays of
// arrays). Member paths are resolved by types.Resolve, the same resolver
// every source uses, so scripts get the same answers from any source.
//
// The file is untrusted: offsets are bounds-checked, every walk along type
// references has a depth bound, and a panic inside the decoder becomes an
// error wrapping vmi.ErrFormat.
package dwarfsrc
