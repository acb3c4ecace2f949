// Package modsyms reads the symbol tables of loaded kernel modules from
// guest memory: what /proc/kallsyms prints for them ("addr t name\t[mod]"),
// without the guest's help.
//
// The vmlinux kallsyms tables (package kallsyms) describe the kernel image
// only. Each module carries its own: struct module's kallsyms member points
// to a struct mod_kallsyms (include/linux/module.h)
//
//	struct mod_kallsyms {
//		Elf_Sym *symtab;
//		unsigned int num_symtab;
//		char *strtab;
//		char *typetab;   // the nm type letter of each symbol (newer kernels)
//	};
//
// which after the module's init has run is &mod->core_kallsyms: the symbols
// of its core sections only (kernel/module/kallsyms.c, layout_symtab and
// add_kallsyms). Entries are ELF symbols (Elf64_Sym: st_name u32, st_info,
// st_other, st_shndx u16, st_value u64, st_size u64; Elf32_Sym: st_name,
// st_value, st_size u32, then st_info, st_other, st_shndx), with st_value
// already relocated to the module's run-time address and st_name an offset
// into strtab. The module's memory is struct module_layout core_layout and
// init_layout (base, size, text_size; up to v6.3) or, since v6.4, struct
// module_memory mem[MOD_MEM_NUM_TYPES] (base, size per
// kind: MOD_TEXT, MOD_DATA, MOD_RODATA, MOD_RO_AFTER_INIT, MOD_INIT_TEXT,
// MOD_INIT_DATA, MOD_INIT_RODATA). The caller reads the member offsets of
// the running kernel from its type information and passes them in Layout;
// this package only follows them.
//
// Lookups follow the kernel's own (kernel/module/kallsyms.c):
// find_kallsyms_symbol for an address (the highest named, defined,
// non-mapping symbol at or below it, among the symbols of the module whose
// memory holds it) and find_kallsyms_symbol_value for a name (the first
// module on the list, the first symbol in its table).
//
// Everything here is read from the guest and may be forged: the module list
// is walked at most MaxModules steps and a node seen twice ends it with an
// error; num_symtab is bounded per module and over all modules; names are cut
// at KSYM_NAME_LEN (512) bytes and the string table is read only as far as
// the largest st_name needs. A module whose table cannot be read is kept,
// with the reason, so that one bad module does not hide the others.
package modsyms
