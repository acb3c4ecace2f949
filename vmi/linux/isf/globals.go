package isf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
)

// wellKnownGlobals are the C types of the kernel globals that Volatility 3's
// Linux plugins and LibVMI dereference by symbol (object_from_symbol and the
// like: a symbol without a type stops them with "Symbol X has no associated
// type"). BTF types only per-CPU variables, so the rest come from here. These
// declarations have not changed across the kernels Volatility supports; the
// table is checked against the DWARF of real kernels (real_test.go, and the
// globals-*.txt extracts in testdata made from Debian's -dbg packages), and a
// symbol whose type the kernel's BTF lacks stays untyped.
//
// The spelling is a small C declarator: "struct X", "union X", "enum X", a
// typedef or base type name, or "func" (a function), then "*"s, then "[N]"
// or "[]" (an array of unknown length, as `extern char _text[]` is).
var wellKnownGlobals = map[string]string{
	// Linker symbols declared as `extern char X[]` (asm/sections.h).
	"_text": "char[]", "_etext": "char[]", "_stext": "char[]", "_sinittext": "char[]",
	"_einittext": "char[]", "_end": "char[]", "_sdata": "char[]", "_edata": "char[]",
	"__bss_start": "char[]", "__bss_stop": "char[]", "__start_rodata": "char[]", "__end_rodata": "char[]",
	"linux_banner": "char[]",

	// Processes, modules, namespaces.
	"init_task":                "struct task_struct",
	"init_mm":                  "struct mm_struct",
	"init_files":               "struct files_struct",
	"init_fs":                  "struct fs_struct",
	"init_pid_ns":              "struct pid_namespace",
	"init_nsproxy":             "struct nsproxy",
	"init_net":                 "struct net",
	"init_cred":                "struct cred",
	"init_user_ns":             "struct user_namespace",
	"init_ipc_ns":              "struct ipc_namespace",
	"init_uts_ns":              "struct uts_namespace",
	"modules":                  "struct list_head",
	"module_kset":              "struct kset *",
	"mod_tree":                 "struct mod_tree_root",
	"tty_drivers":              "struct list_head",
	"super_blocks":             "struct list_head",
	"cap_last_cap":             "int",
	"pid_max":                  "int",
	"nr_threads":               "int",
	"jiffies":                  "unsigned long",
	"jiffies_64":               "u64",
	"prog_idr":                 "struct idr",
	"map_idr":                  "struct idr",
	"link_idr":                 "struct idr",
	"net_namespace_list":       "struct list_head",
	"keyboard_notifier_list":   "struct atomic_notifier_head",
	"panic_notifier_list":      "struct atomic_notifier_head",
	"reboot_notifier_list":     "struct blocking_notifier_head",
	"iomem_resource":           "struct resource",
	"ioport_resource":          "struct resource",
	"socket_file_ops":          "struct file_operations",
	"sockfs_dentry_operations": "struct dentry_operations",
	"tcp4_seq_afinfo":          "struct tcp_seq_afinfo",
	"tcp6_seq_afinfo":          "struct tcp_seq_afinfo",
	"udp4_seq_afinfo":          "struct udp_seq_afinfo",
	"udp6_seq_afinfo":          "struct udp_seq_afinfo",
	"udplite4_seq_afinfo":      "struct udp_seq_afinfo",
	"udplite6_seq_afinfo":      "struct udp_seq_afinfo",
	"sys_call_table":           "func *[]",
	"ia32_sys_call_table":      "func *[]",
	"x32_sys_call_table":       "func *[]",
	"idt_table":                "gate_desc[256]",

	// printk: the ring buffer (5.10+) and the older log buffer.
	"prb":               "struct printk_ringbuffer *",
	"printk_rb_static":  "struct printk_ringbuffer",
	"printk_rb_dynamic": "struct printk_ringbuffer",
	"log_buf":           "char *",
	"log_buf_len":       "u32",
	"log_first_idx":     "u32",
	"log_next_idx":      "u32",

	// Memory layout.
	"page_offset_base": "unsigned long",
	"vmalloc_base":     "unsigned long",
	"vmemmap_base":     "unsigned long",
	"phys_base":        "unsigned long",
	"mem_section":      "struct mem_section **",
	"node_data":        "pg_data_t *[]",
	"max_pfn":          "unsigned long",
	"totalram_pages":   "atomic_long_t",
	"init_top_pgt":     "pgd_t[]",
	"swapper_pg_dir":   "pgd_t[]",
}

// typeSpelling is a parsed wellKnownGlobals entry.
type typeSpelling struct {
	tag      string // struct, union, enum or "" (a typedef or base type), or func
	name     string
	pointers int
	array    bool
	count    uint32
}

// parseSpelling reads a declarator of wellKnownGlobals (see there).
func parseSpelling(s string) (typeSpelling, error) {
	var sp typeSpelling
	rest := strings.TrimSpace(s)
	if i := strings.IndexByte(rest, '['); i >= 0 {
		dim := rest[i:]
		rest = strings.TrimSpace(rest[:i])
		if !strings.HasSuffix(dim, "]") || strings.Count(dim, "[") != 1 {
			return sp, fmt.Errorf("type %q: one array dimension at the end is all a spelling may have", s)
		}
		sp.array = true
		if n := strings.TrimSpace(dim[1 : len(dim)-1]); n != "" {
			v, err := strconv.ParseUint(n, 10, 32)
			if err != nil {
				return sp, fmt.Errorf("type %q: array length %q: %w", s, n, err)
			}
			sp.count = uint32(v)
		}
	}
	for strings.HasSuffix(rest, "*") {
		sp.pointers++
		rest = strings.TrimSpace(strings.TrimSuffix(rest, "*"))
	}
	if tag, name, ok := strings.Cut(rest, " "); ok && (tag == "struct" || tag == "union" || tag == "enum") {
		sp.tag, sp.name = tag, strings.TrimSpace(name)
	} else {
		sp.name = rest
		if rest == "func" {
			sp.tag = "func"
		}
	}
	if sp.name == "" {
		return sp, fmt.Errorf("type %q names no type", s)
	}
	return sp, nil
}

// globalType builds the BTF type that spelling s describes, from the
// kernel's own types. ok is false when the kernel's BTF has no type of that
// name (an older or differently configured kernel): the symbol then stays
// untyped rather than typed wrongly.
func (c *converter) globalType(spec *btf.Spec, s string) (t btf.Type, ok bool, err error) {
	sp, err := parseSpelling(s)
	if err != nil {
		return nil, false, err
	}
	switch sp.tag {
	case "func":
		t = &btf.FuncProto{Return: &btf.Void{}}
	case "struct", "union", "enum":
		t, ok = c.namedComposite(spec, sp.tag, sp.name)
		if !ok {
			return nil, false, nil
		}
	default:
		t, ok = c.namedScalar(spec, sp.name)
		if !ok {
			return nil, false, nil
		}
	}
	for range sp.pointers {
		t = &btf.Pointer{Target: t}
	}
	if sp.array {
		t = &btf.Array{Type: t, Nelems: sp.count}
	}
	return t, true, nil
}

// namedComposite finds struct/union/enum name as the ISF has it.
func (c *converter) namedComposite(spec *btf.Spec, tag, name string) (btf.Type, bool) {
	if tag == "enum" {
		e, ok := c.enums[name]
		return e, ok
	}
	t, ok := c.composites[name]
	if !ok || kindOf(t) != tag {
		return nil, false
	}
	return t, true
}

// namedScalar finds a base type (by its BTF name or a C spelling of it) or
// a typedef.
func (c *converter) namedScalar(spec *btf.Spec, name string) (btf.Type, bool) {
	if name == "void" {
		return &btf.Void{}, true
	}
	if canon, ok := cBaseNames[name]; ok {
		name = canon
	}
	var found btf.Type
	for _, t := range anyTypesByName(spec, name) {
		switch t.(type) {
		case *btf.Int, *btf.Float, *btf.Typedef:
			if found == nil {
				found = t
			}
		}
	}
	return found, found != nil
}

// anyTypesByName wraps Spec.AnyTypesByName, whose not-found error is just
// "no types".
func anyTypesByName(spec *btf.Spec, name string) []btf.Type {
	ts, err := spec.AnyTypesByName(name)
	if err != nil {
		return nil
	}
	return ts
}

// cBaseNames maps C spellings of base types to the names compilers put in
// BTF and DWARF (and so the ISF's base_types).
var cBaseNames = map[string]string{
	"unsigned long":      "long unsigned int",
	"long":               "long int",
	"unsigned int":       "unsigned int",
	"unsigned":           "unsigned int",
	"unsigned long long": "long long unsigned int",
	"long long":          "long long int",
	"unsigned short":     "short unsigned int",
	"short":              "short int",
}

// globalTypes resolves every wellKnownGlobals entry (and extra, which wins)
// against the kernel's BTF. An entry whose type the kernel lacks is left
// out; one that cannot be parsed is an error (the table is ours, extra is
// the caller's).
func (c *converter) globalTypes(spec *btf.Spec, extra map[string]string) (map[string]btf.Type, error) {
	out := make(map[string]btf.Type, len(wellKnownGlobals)+len(extra))
	for _, table := range []map[string]string{wellKnownGlobals, extra} {
		for name, s := range table {
			t, ok, err := c.globalType(spec, s)
			if err != nil {
				return nil, fmt.Errorf("type of symbol %s: %w: %w", name, vmi.ErrFormat, err)
			}
			if ok {
				out[name] = t
			}
		}
	}
	return out, nil
}
