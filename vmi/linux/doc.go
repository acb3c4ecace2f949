// Package linux turns a Target holding a Linux guest into a Kernel: the
// kernel's virtual address space and a profile that names things in it.
//
// It owns locating the kernel (locate.go): the physical and virtual KASLR
// slides and the kernel page-table root, found from memory and validated
// against it. The root kept is the kernel's own, init_top_pgt (x86-64) or
// swapper_pg_dir (i386), as LibVMI and Volatility do: a vCPU's CR3 belongs to
// whichever task ran last, whose page tables a live guest frees when it
// exits. With CPU state the CR3 finds the slides and the kernel's root through
// them, and checks it (both must map the kernel alike); without, the kernel's
// root is found at the physical slide, so raw images work. The CR3 stays
// the root only when the kernel's own cannot be found (said in the notes). The
// physical slide comes from the kernel banner (linux_banner), which the
// kernel's 2 MiB load alignment places at an address congruent to its link
// address modulo 2 MiB; the virtual slide is the 2 MiB-aligned kernel-map
// address that translates to the kernel's physical _text. A kernel whose
// symbols are text symbols only (no CONFIG_KALLSYMS_ALL: no linux_banner)
// is located the same way through its VMCOREINFO (init_uts_ns's utsname in
// place of the banner, swapper_pg_dir as the root), and VMCOREINFO's
// SYMBOL() entries answer the data symbols it names (kernel_vmcoreinfo.go).
//
// Profiles derived from memory (memprofile.go) are cached on disk (0700
// folders, 0600 files), found by the kernel's banner and the build id from
// its VMCOREINFO, both of which the guest writes and may forge; an entry is
// used only when its build id is the guest's and the guest holds, byte for
// byte and at the same distance from _text, the kallsyms tables and BTF the
// entry was derived from (memprofile_evidence.go).
//
// Process address spaces (process.go, vma.go): a process is found by pid on
// the task list from init_task (bounded, cycle-checked; thread group leaders
// only), and read through a page walk rooted at the physical address of its
// mm->pgd, in the kernel's paging mode; with page-table isolation mm->pgd is
// the kernel's half, which maps all of user space. Its VMAs come from the
// maple tree mm->mm_mt (6.1 on; vmi/linux/maple) or the mmap list before;
// a mapped file is named by its dentries up to its file system's root (no
// mount points crossed). A read that finds no page says why: no VMA, no
// page-table entry, a swap entry, or PROT_NONE.
//
// Sub-packages read profile sources: symbols (System.map, /proc/kallsyms),
// btfsrc (struct layouts from BTF in a vmlinuz, a vmlinux or a raw blob),
// kernelimage (the vmlinux inside a bzImage), and from memory kallsyms,
// btfmem, vmcoreinfo and modsyms (each loaded module's own symbol table).
// kwalk walks the kernel's linked containers (lists, hlists, red-black
// trees, XArrays) in guest memory.
//
// Names of addresses (kernel_symbols.go): SymbolAt names the kernel or
// module symbol an address lies in, and Symbol falls back to the modules'
// symbols for a name the kernel image lacks; the module tables are read
// again whenever the target's generation moves. Per-cpu variables and the
// kernel's CPU sets are in kernel_percpu.go.
//
// References: Documentation/arch/x86/x86_64/mm.rst (kernel virtual memory
// map), arch/x86/include/asm/page_64_types.h (__START_KERNEL_map),
// arch/x86/boot/compressed/kaslr.c (how the slides are chosen).
package linux
