// Package isf writes and reads Volatility 3's Intermediate Symbol Format
// (ISF): one JSON document holding a kernel's symbols and type layouts.
//
// The format is defined by Volatility's JSON schema
// (https://github.com/volatilityfoundation/volatility3/tree/develop/volatility3/schemas,
// schema-6.x.json) and, for Linux, by what dwarf2json produces
// (https://github.com/volatilityfoundation/dwarf2json, main.go), since that
// is what Volatility's Linux support is exercised with. Write follows
// dwarf2json's choices so that Volatility loads our output like its own:
//
//   - typedefs and qualifiers are resolved to their targets (an ISF has no
//     typedefs), struct members name their type with a descriptor
//     {kind: base|struct|union|enum|pointer|array|function|bitfield, ...};
//     an anonymous struct behind a typedef takes the typedef's name, and
//     every typedef of a composite has an entry (convert.go);
//   - a struct that is only declared is an empty entry of size 0;
//   - the globals that Volatility's plugins and LibVMI dereference are
//     typed from a table checked against real kernels' DWARF (globals.go),
//     or from the -dbg vmlinux's DWARF when one is given; the linker's
//     absolute phys_startup_64 (LibVMI's start) is added;
//   - anonymous structs, unions and enums are named "unnamed_<16 hex
//     digits of a SHA-1 of their definition>", and anonymous members
//     "unnamed_field_<hex offset>" with "anonymous": true, which format
//     6.2 readers flatten into the parent;
//   - base_types holds every C base type plus "void" and "pointer";
//   - symbols carry link-time addresses (System.map's), and linux_banner
//     carries the banner bytes as base64 "constant_data", which is how
//     Volatility matches an ISF to a memory image.
//
// Write builds an ISF from a kernel's BTF instead of DWARF: BTF is what a
// distribution kernel ships (Debian strips DWARF), and it holds the same
// layouts. Load reads any Linux ISF (ours, dwarf2json's, possibly xz, gzip,
// zstd or bzip2 compressed) to answer the questions xascript asks of a
// profile: symbol addresses, and the types, as a loader into the project's
// one type graph (vmi/types; graph.go): "unnamed_" types are anonymous again,
// a bitfield's bit offset is its storage unit's plus its bit position, and
// member paths are resolved by types.Resolve like every other source's.
// Write keeps its own model of BTF (cilium's) for writing.
//
// Open reads an ISF through the on-disk cache (cache.go): indexed once, a
// warm run maps the index and decodes only the types asked for.
// docs/isf.md has the checks with Volatility 3, dwarf2json and LibVMI.
//
// An ISF read by Load is untrusted: its size is capped (MaxSize), every walk
// over type references has a depth bound, and arithmetic on sizes and
// offsets is checked, so a hostile file yields errors, never panics or
// endless loops.
package isf
