// Package vmcoreinfo finds and parses the kernel's VMCOREINFO: the text the
// kernel writes for crash-dump tools (kdump, makedumpfile, crash) describing
// itself, so they can read a dump without a vmlinux.
//
// A kernel built with CONFIG_CRASH_CORE (v4.11–v6.8; CONFIG_VMCORE_INFO
// since v6.9) fills one zeroed page, vmcoreinfo_data, at boot
// (crash_save_vmcoreinfo_init, a subsys_initcall) with lines of the form
// KEY=VALUE, written by vmcoreinfo_append_str through a 0x50-byte buffer, so
// no line is longer than 79 bytes and the whole is at most VMCOREINFO_BYTES
// (PAGE_SIZE):
//
//	OSRELEASE=6.1.0-56-cloud-amd64     init_uts_ns.name.release (always first)
//	BUILD-ID=<40 hex digits>           vmlinux's GNU build id (v5.9+)
//	PAGESIZE=4096
//	SYMBOL(init_uts_ns)=ffffffff...    run-time address (KASLR applied), hex
//	SIZE(list_head)=16                 decimal
//	OFFSET(list_head.next)=0           decimal, struct.member
//	LENGTH(zone.free_area)=11          decimal
//	NUMBER(phys_base)=-2147483648      signed decimal (some writers use 0x hex)
//	CONFIG_X86_PAE=y
//	KERNELOFFSET=2c000000              x86-64 and others: kaslr_offset(), hex
//	CRASHTIME=1700000000               appended only when the kernel crashes
//
// vmcoreinfo_size holds its length, and vmcoreinfo_note points to a copy
// wrapped in an ELF note named "VMCOREINFO" (/sys/kernel/vmcoreinfo prints
// that note's physical address).
//
// References: kernel/vmcore_info.c and include/linux/vmcore_info.h (v6.9+;
// kernel/crash_core.c and include/linux/crash_core.h before),
// arch/x86/kernel/machine_kexec_{32,64}.c (arch_crash_save_vmcoreinfo),
// Documentation/admin-guide/kdump/vmcoreinfo.rst.
//
// Memory is hostile: Parse reads at most MaxSize bytes and MaxLines lines,
// skips (and reports) malformed lines, keeps the first of duplicate keys,
// and requires OSRELEASE, PAGESIZE and at least one SYMBOL before it calls
// the text VMCOREINFO. Scan reads a bounded number of pages. Nothing here
// trusts an address from the note: callers validate what they use.
package vmcoreinfo
