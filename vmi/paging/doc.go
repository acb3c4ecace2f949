// Package paging translates guest-virtual to guest-physical addresses by
// walking x86 page tables held in guest memory, and caches the results.
//
// It owns the four x86 paging modes and their page sizes, following the
// Intel SDM, vol. 3A, chapter 4 "Paging":
//   - 4.3 32-bit paging (Legacy32): 4 KiB pages, and 4 MiB pages when
//     CR4.PSE=1, including the PSE-36 high physical-address bits (PDE bits
//     20:13 give physical bits 39:32).
//   - 4.4 PAE paging (PAE): four PDPTEs located by CR3 bits 31:5, 2 MiB and
//     4 KiB pages, 52-bit physical addresses.
//   - 4.5 4-level paging (IA32e) and 5-level paging (LA57): 1 GiB, 2 MiB and
//     4 KiB pages; linear addresses must be canonical (48-bit, or 57-bit with
//     CR4.LA57).
//
// Intel SDM: https://www.intel.com/content/www/us/en/developer/articles/technical/intel-sdm.html
// 5-level paging white paper:
// https://www.intel.com/content/www/us/en/content-details/671442/5-level-paging-and-5-level-ept-white-paper.html
//
// Everything a walk reads is guest-controlled. A walk has a fixed number of
// levels, every entry is masked before it is used as an address, and no input
// can make this package panic or loop. The package never writes to the guest
// on its own (Write stores only what a caller asks for, through a target that
// was opened for writing): accessed and dirty bits are left as they are, which also means a translation
// here can succeed where the CPU would have to set those bits first.
//
// Where the hardware would fault on a reserved bit that no operating system
// sets in practice, the walkers stay lenient and ignore it (the guest would
// not have run otherwise), except for the page-size bit in PML4 and PML5
// entries, which is reported as vmi.ErrFormat because following it as a table
// pointer or as a 512 GiB page would both be wrong. Protection bits (R/W, U/S,
// XD, protection keys) are ignored: introspection reads what the kernel can.
//
// A Space is not safe for concurrent use: its translation cache is updated
// on every miss.
package paging
