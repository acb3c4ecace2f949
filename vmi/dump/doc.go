// Package dump opens memory-dump files as vmi.Targets: ELF cores (QEMU
// dump-guest-memory, virsh dump --memory-only, kdump /proc/vmcore), LiME
// captures and raw physical images, optionally compressed (zstd, xz, gzip,
// bzip2; recognised by magic bytes, never by file name).
//
// It owns the parsing of the dump's container format: which file bytes hold
// which guest-physical addresses, and the vCPU state stored in ELF notes. It
// never interprets guest memory itself (page tables, kernel structures):
// that is vmi/paging's and vmi/linux's job.
//
// The uncompressed dump is one read-only []byte (an mmap, provided by
// internal/unpack); only when the caller asks for writes (Options.Writable)
// is an uncompressed file opened read-write and mapped writable, so that
// WritePhys changes the file (write.go). Open reads only the headers (ELF header, program
// headers, notes; LiME range headers); ReadPhys is a binary search over the
// sorted segment table plus a copy, so a script touches only the pages it
// reads. Every header field is guest- or attacker-controlled: sizes and
// offsets are bounds- and overflow-checked before use, and nothing is
// allocated in proportion to an unchecked value.
//
// Formats and their references:
//
//   - ELF: System V ABI, generic ABI, chapters "ELF Header", "Program
//     Header" and "Note Section":
//     https://www.sco.com/developers/gabi/latest/contents.html
//     A PT_LOAD segment's p_paddr is the guest-physical address of its first
//     byte. Where p_memsz > p_filesz the gABI defines the bytes past
//     p_filesz as zero; dumpers use that to leave out zero-filled or
//     excluded memory (QEMU's dump with a length filter, makedumpfile's ELF
//     output), so the tail is part of the memory map and reads as zeros.
//   - NT_PRSTATUS ("CORE" notes): struct elf_prstatus in Linux
//     include/linux/elfcore.h with the x86-64 and i386 user_regs_struct of
//     arch/x86/include/asm/user_64.h and user_32.h.
//   - QEMU note: struct QEMUCPUState in QEMU target/i386/arch_dump.c
//     (https://gitlab.com/qemu-project/qemu/-/blob/master/target/i386/arch_dump.c).
//     It carries CR0..CR4 but not EFER; see cpuFromQEMU for how EFER is
//     inferred.
//   - VMCOREINFO note: Documentation/admin-guide/kdump/vmcoreinfo.rst in
//     Linux; the note's text is kept for the Linux profile
//     (VMCoreInfoProvider).
//   - LiME: https://github.com/504ensicsLabs/LiME/blob/master/doc/README.md
//     ("lime" format: 32-byte range headers, end address inclusive).
//
// Where the format allows several readings, the choice is deterministic and
// documented at the code that makes it (overlapping PT_LOADs: ranges.go).
package dump
