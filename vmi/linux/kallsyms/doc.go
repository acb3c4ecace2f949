// Package kallsyms finds the kernel's own symbol table in guest memory and
// decodes it, so that a guest can be introspected with no System.map, no
// /proc/kallsyms capture and no vmlinux.
//
// A kernel built with CONFIG_KALLSYMS carries its symbols in .rodata as a set
// of tables written at link time by scripts/kallsyms.c and read by
// kernel/kallsyms.c:
//
//	kallsyms_num_syms       u32 (pointer-sized before v4.20)
//	kallsyms_names          per symbol: a length (1 byte, or 2 bytes ULEB128-style
//	                        when >= 0x80, since v6.1) and that many token indexes;
//	                        the first expanded character is the nm type letter
//	kallsyms_markers        offset in kallsyms_names of every 256th name
//	                        (u32; pointer-sized before v4.20)
//	kallsyms_token_table    256 NUL-terminated tokens
//	kallsyms_token_index    256 u16 offsets into the token table
//	kallsyms_offsets        s32 per symbol, with kallsyms_relative_base (pointer)
//	  or kallsyms_addresses pointer per symbol (no CONFIG_KALLSYMS_BASE_RELATIVE)
//	kallsyms_seqs_of_names  3-byte big-endian symbol indexes in name order (v6.2+)
//
// Their order and the meaning of the offsets changed over time; Find detects
// which variant it has from the data alone:
//
//   - v2.6.10-v6.1: addresses|offsets+relative_base, num_syms, names,
//     markers, token_table, token_index. num_syms and markers became u32 in
//     v4.20 (commit 80ffbaa5b1bd); both widths are accepted.
//   - v6.2-v6.3 (and Debian's 6.1.1xx, which backported it):
//     kallsyms_seqs_of_names between markers and token_table (commit 60443c88f3a8).
//   - v6.4+: num_syms, names, markers, token_table, token_index,
//     offsets|addresses, relative_base, seqs_of_names (commit 404bad70fcf7,
//     "scripts/kallsyms: change the output order").
//   - v7.0+: no relative_base; offsets are place-relative (each s32 is
//     relative to its own location, commit a081b5789255) and every table is
//     4-byte aligned. The tables then hold no absolute address at all:
//     Options.ImageVA supplies it.
//
// Offsets are decoded as the kernel's kallsyms_sym_address does: absolute
// addresses; base-relative (relative_base + u32 offset, CONFIG_KALLSYMS_BASE_RELATIVE,
// default since v4.6); base-relative with absolute per-cpu symbols
// (CONFIG_KALLSYMS_ABSOLUTE_PERCPU, x86-64 SMP until v6.15: a non-negative
// offset is an absolute value, a negative one is relative_base-1-offset); or
// place-relative. The choice is made from the data: a pointer-sized relative
// base that is a kernel address, offsets whose decoded addresses are sorted
// (scripts/kallsyms sorts the table by address and the kernel binary-searches
// it), and a kallsyms_seqs_of_names that is a permutation of the symbol
// indexes where the layout has one.
//
// Sources: kernel/kallsyms.c and scripts/kallsyms.c,
// https://github.com/torvalds/linux/blob/master/kernel/kallsyms.c and
// https://github.com/torvalds/linux/blob/master/scripts/kallsyms.c, at the
// versions above. The search heuristic (the run of single-digit tokens
// "0\x001\x00...9\x00" that every token table holds at indexes '0'-'9', then
// the token index that must describe exactly those tokens) is the one
// vmlinux-to-elf's kallsyms_finder.py uses.
//
// Everything read here is guest-controlled: counts and offsets are bounded
// before anything is allocated from them (num_syms by Options.MaxSymbols,
// default 1<<22, and by the bytes its names occupy), names expand to at
// most KSYM_NAME_LEN (512) bytes, markers must agree with the names, the
// number of candidates tried and the total work of one Find are capped (a
// guest can plant near-misses), and no input makes Find panic (FuzzFind,
// FuzzDecodeNames). Only little-endian tables are handled (x86).
//
// Find reads by ranges: the scan streams the image through one 1 MiB
// buffer, then only the tables themselves are read (about 3 MiB for a
// Debian kernel). Options.Hint (the banner's offset) lets the scan start
// where the tables are.
package kallsyms
