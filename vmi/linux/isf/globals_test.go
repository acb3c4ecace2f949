package isf

import (
	"bufio"
	"bytes"
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/dwarfsrc"
	"github.com/xascript/xascript/vmi/linux/kernelimage"
)

// The DWARF side of the well-known globals table: testdata/globals-KVER.txt
// holds, for each table entry the kernel defines, the type its -dbg
// vmlinux's DWARF gives the variable, in the canonical spelling below. It
// is made from Debian's -dbg package of the committed kernels:
//
//	XASCRIPT_GLOBALS_DWARF=/path/vmlinux-KVER go test -run TestGlobalsExtract ./vmi/linux/isf/
//
// (writes testdata/globals-KVER.txt; KVER is read from the vmlinux's
// banner). TestGlobalsAgainstDWARF then checks, in every make test, that
// the table resolved against the BTF of the same committed kernel gives the
// same types.
const globalsDWARFEnv = "XASCRIPT_GLOBALS_DWARF"

var globalsKernels = []string{"6.1.0-56-cloud-amd64", "6.12.117+deb12-cloud-amd64"}

// canonBTF spells t with typedefs and qualifiers peeled, anonymous
// composites by kind and size, arrays of unknown length as "[]": what DWARF
// and BTF must agree on, whatever names typedefs give.
func canonBTF(t btf.Type, depth int) string {
	if depth > 16 {
		return "..."
	}
	t, err := resolve(t)
	if err != nil {
		return "?"
	}
	switch t := t.(type) {
	case *btf.Void:
		return "void"
	case *btf.Int, *btf.Float:
		return t.TypeName()
	case *btf.Pointer:
		return canonBTF(t.Target, depth+1) + "*"
	case *btf.Array:
		return canonBTF(t.Type, depth+1) + arraySuffix(int64(t.Nelems))
	case *btf.FuncProto, *btf.Func:
		return "func"
	case *btf.Struct, *btf.Union, *btf.Enum:
		return canonComposite(kindOf(t), t.TypeName(), sizeOf(t))
	case *btf.Fwd:
		return canonComposite(t.Kind.String(), t.Name, 0)
	}
	return fmt.Sprintf("%T", t)
}

func sizeOf(t btf.Type) int64 {
	n, err := btf.Sizeof(t)
	if err != nil {
		return -1
	}
	return int64(n)
}

func arraySuffix(n int64) string {
	if n <= 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d]", n)
}

func canonComposite(kind, name string, size int64) string {
	if name == "" {
		return fmt.Sprintf("%s{size=%d}", kind, size)
	}
	return kind + " " + name
}

// canonDWARF is canonBTF for a DWARF type.
func canonDWARF(t dwarf.Type, depth int) string {
	if depth > 16 {
		return "..."
	}
	switch t := t.(type) {
	case *dwarf.TypedefType:
		return canonDWARF(t.Type, depth+1)
	case *dwarf.QualType:
		return canonDWARF(t.Type, depth+1)
	case *dwarf.VoidType:
		return "void"
	case *dwarf.PtrType:
		return canonDWARF(t.Type, depth+1) + "*"
	case *dwarf.ArrayType:
		return canonDWARF(t.Type, depth+1) + arraySuffix(t.Count)
	case *dwarf.FuncType:
		return "func"
	case *dwarf.StructType:
		size := t.ByteSize
		if t.Incomplete {
			size = 0
		}
		return canonComposite(t.Kind, t.StructName, size)
	case *dwarf.EnumType:
		return canonComposite("enum", t.EnumName, t.ByteSize)
	case *dwarf.UnspecifiedType:
		return "void"
	}
	return t.Common().Name
}

// dwarfGlobals reads the types DWARF gives the table's variables, in the
// canonical spelling.
func dwarfGlobals(t *testing.T, path string) (release string, types map[string]string) {
	vars, err := dwarfsrc.Variables(path)
	if err != nil {
		t.Fatal(err)
	}
	types = map[string]string{}
	for name := range wellKnownGlobals {
		if typ, ok := vars[name]; ok {
			types[name] = canonDWARF(typ, 0)
		}
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if sec := f.Section(".rodata"); sec != nil {
		data, err := sec.Data()
		if err == nil {
			if i := bytes.Index(data, []byte("Linux version ")); i >= 0 {
				rest := data[i+len("Linux version "):]
				if j := bytes.IndexByte(rest, ' '); j > 0 {
					release = string(rest[:j])
				}
			}
		}
	}
	if release == "" {
		t.Fatalf("%s: no banner in .rodata", path)
	}
	return release, types
}

func TestGlobalsExtract(t *testing.T) {
	path := os.Getenv(globalsDWARFEnv)
	if path == "" {
		t.Skipf("%s unset: this test only writes testdata/globals-KVER.txt from a -dbg vmlinux", globalsDWARFEnv)
	}
	release, types := dwarfGlobals(t, path)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: types of the well-known globals in the DWARF of its -dbg vmlinux (globals_test.go)\n", release)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range types {
			if !yield(n) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "%s\t%s\n", name, types[name])
	}
	out := filepath.Join("testdata", "globals-"+release+".txt")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d globals", out, len(types))
}

// kernelBTF extracts the BTF of a committed vmlinuz.
func kernelBTF(t *testing.T, release string) *btf.Spec {
	image, err := os.ReadFile(filepath.Join("../../../testdata/kernels", release, "vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	var vmlinux bytes.Buffer
	if err := kernelimage.ExtractVmlinux(bytes.NewReader(image), int64(len(image)), &vmlinux); err != nil {
		t.Fatal(err)
	}
	sec, _, err := btfsrc.ELFSection(vmlinux.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(sec))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestGlobalsAgainstDWARF: every table entry that the kernel's DWARF
// types resolves, in that kernel's BTF, to the same type. (An entry the
// kernel does not define is harmless: only symbols in the kernel's symbol
// table are written.)
func TestGlobalsAgainstDWARF(t *testing.T) {
	seen := map[string]bool{}
	for _, release := range globalsKernels {
		t.Run(release, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "globals-"+release+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := map[string]string{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
					name, typ, ok := strings.Cut(line, "\t")
					if !ok {
						t.Fatalf("bad line %q", line)
					}
					want[name] = typ
				}
			}
			if len(want) < 40 {
				t.Fatalf("the extract has %d globals; the table's kernels define more than 40", len(want))
			}
			spec := kernelBTF(t, release)
			c := newConverter([]byte{0x9f, 0xeb})
			if err := c.collect(spec); err != nil {
				t.Fatal(err)
			}
			got, err := c.globalTypes(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range slices.Sorted(mapsKeys(want)) {
				seen[name] = true
				typ, ok := got[name]
				if !ok {
					t.Errorf("%s: DWARF types it %s; the table gives it no type in this kernel's BTF", name, want[name])
					continue
				}
				if g := canonBTF(typ, 0); !sameGlobalType(g, want[name]) {
					t.Errorf("%s: table %q resolves to %s; DWARF says %s", name, wellKnownGlobals[name], g, want[name])
				}
			}
		})
	}
	for name := range wellKnownGlobals {
		if !seen[name] {
			t.Logf("%s: in neither committed kernel (kept for older kernels)", name)
		}
	}
}

// sameGlobalType compares canonical spellings; an array of unknown length
// ("[]": the table cannot know NR_CPUS, MAX_NUMNODES or NR_syscalls, and
// dwarf2json writes these as the declarations have them, with count 0)
// matches the same array of any length.
func sameGlobalType(table, dwarf string) bool {
	if table == dwarf {
		return true
	}
	if prefix, ok := strings.CutSuffix(table, "[]"); ok && strings.HasPrefix(dwarf, prefix+"[") && strings.HasSuffix(dwarf, "]") {
		return !strings.Contains(dwarf[len(prefix)+1:], "[")
	}
	return false
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, cmp.Compare)
		for _, k := range keys {
			if !yield(k) {
				return
			}
		}
	}
}

// readerSymbols are the kernel symbols that Volatility 3's Linux plugins and
// symbol extensions (2.11) and LibVMI's Linux support read as typed objects
// (object_from_symbol and the like), gathered from their sources; see
// docs/isf.md. Each must carry a type when the kernel has it.
var readerSymbols = []string{
	"init_task", "modules", "module_kset", "_text", "_etext", "idt_table", "prog_idr", "prb",
	"net_namespace_list", "socket_file_ops", "sockfs_dentry_operations", "keyboard_notifier_list",
	"tty_drivers", "cap_last_cap", "vmemmap_base", "mem_section", "iomem_resource", "init_files",
	"init_pid_ns", "tcp4_seq_afinfo", "udp4_seq_afinfo", "node_data", "sys_call_table", "linux_banner",
	"init_top_pgt", "page_offset_base", "log_buf", "log_buf_len",
}

// TestRealReaderSymbolsTyped: the ISF written from the committed 6.1
// kernel's BTF and kallsyms types every symbol the readers dereference,
// with the type DWARF gives it (the extract), carries the absolute
// phys_startup_64 that System.map has and kallsyms lacks, and defines
// every struct or union it refers to.
func TestRealReaderSymbolsTyped(t *testing.T) {
	_, _, sysmap, data := realISF(t)
	var doc struct {
		Symbols   map[string]map[string]any `json:"symbols"`
		UserTypes map[string]any            `json:"user_types"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range readerSymbols {
		s, ok := doc.Symbols[name]
		if !ok {
			t.Errorf("%s: not in the ISF", name)
			continue
		}
		if _, ok := s["type"]; !ok {
			t.Errorf("%s: no type", name)
		}
	}
	banner := doc.Symbols["linux_banner"]["type"].(map[string]any)
	if n := banner["count"].(float64); int(n) != len(bannerData(realBannerText())) {
		t.Errorf("linux_banner: char[%v], want the length of its constant_data, %d", n, len(bannerData(realBannerText())))
	}
	want, ok := sysmap.Lookup("phys_startup_64")
	if !ok {
		t.Fatal("System.map has no phys_startup_64")
	}
	got, ok := doc.Symbols["phys_startup_64"]["address"].(float64)
	if !ok || uint64(got) != want {
		t.Errorf("phys_startup_64 = %v, System.map says %#x", got, want)
	}
	// An anonymous struct behind a typedef is named by the typedef, which
	// has its own entry (atomic64_t); a typedef of a named struct keeps the
	// struct's name (kernel_cap_t is struct kernel_cap_struct on 6.1) and
	// still has an entry.
	usage := doc.UserTypes["cred"].(map[string]any)["fields"].(map[string]any)["usage"].(map[string]any)["type"].(map[string]any)
	capEff := doc.UserTypes["cred"].(map[string]any)["fields"].(map[string]any)["cap_effective"].(map[string]any)["type"].(map[string]any)
	if usage["name"] != "atomic64_t" || capEff["name"] != "kernel_cap_struct" {
		t.Errorf("cred.usage is %v, cred.cap_effective %v; want atomic64_t and kernel_cap_struct", usage["name"], capEff["name"])
	}
	for _, name := range []string{"atomic64_t", "kernel_cap_t", "kernel_cap_struct"} {
		if _, ok := doc.UserTypes[name]; !ok {
			t.Errorf("no user type %s", name)
		}
	}
	undefined := 0
	for _, m := range regexp.MustCompile(`"kind":"(?:struct|union)","name":"([^"]+)"`).FindAllSubmatch(data, -1) {
		if _, ok := doc.UserTypes[string(m[1])]; !ok {
			if undefined++; undefined <= 5 {
				t.Errorf("%s is referred to but not defined", m[1])
			}
		}
	}
	if undefined > 0 {
		t.Errorf("%d references to undefined structs or unions", undefined)
	}
}
