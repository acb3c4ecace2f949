// Package symbols reads kernel symbol tables from text: System.map (written
// by scripts/mksysmap at build time, link-time addresses) and /proc/kallsyms
// (the running kernel's view, addresses already slid by KASLR, plus module
// symbols as "addr t name\t[module]").
//
// Both are lines of "<hex address> <type> <name>", the nm(1) output format
// (https://sourceware.org/binutils/docs/binutils/nm.html; kallsyms prints it
// with "%px %c %s" in kernel/kallsyms.c). An uppercase type is a global
// symbol, lowercase a local one.
//
// A Debian /proc/kallsyms is ~200k lines, 9 MB; building a Go map of it costs
// tens of milliseconds, more than a script run may take. So a Table keeps the
// file's bytes (mmapped through internal/unpack) and a compact hash index of
// line offsets. Built in one pass on the first lookup, the index is cached
// on disk next to the decompressed file (internal/unpack.Derived), so later
// runs map it and a lookup touches a few pages. The sorted index for reverse
// lookups (Nearest) is built in memory only when asked for.
//
// This package knows nothing about KASLR: the kernel locator in vmi/linux
// decides how the addresses relate to the guest's.
package symbols
