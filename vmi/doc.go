// Package vmi holds the vocabulary shared by every layer of guest-memory
// introspection: a Target (guest-physical memory plus vCPU state), the
// physical memory map, and the sentinel errors that callers test with
// errors.Is.
//
// What a target may or may not do is one optional interface each, checked
// with a type assertion: PageMapper (guest pages in host memory),
// FrameTranslator (page tables of machine frames), Pauser (a guest that
// runs), Generationer (a guest that changes under us), Writer (guest memory
// that may be changed). A Generationer's
// Generation is the one "the target ran" signal: every cache over a target
// checks it instead of being flushed by hand from each place that resumes.
//
// A guest's OS profile may open a process's user address space
// (ProcessOpener, process.go): a Process reads through that process's own
// page tables and lists its mappings (VMAs); a page it cannot read is a
// *PageFault that says why (not mapped, not faulted in, swapped out,
// PROT_NONE).
//
// Sub-packages do the work:
//   - vmi/dump: targets backed by memory-dump files (raw, ELF core, LiME;
//     zstd/xz/gzip-compressed transparently).
//   - vmi/paging: x86 page-table walkers (legacy, PAE, IA-32e, LA57) and the
//     translation cache.
//   - vmi/linux: the Linux profile: symbols, struct layouts (BTF) and the
//     kernel locator (KASLR slides, page-table root), and process address
//     spaces (task list, mm->pgd, VMAs through vmi/linux/maple).
//
// Everything read through a Target is guest-controlled data. Nothing in this
// tree may panic, loop without a bound or allocate in proportion to a value
// read from the guest without checking it first. Nothing writes to the guest
// unless the user asked for it when the target was opened (Writer), and
// then only where a script writes.
package vmi
