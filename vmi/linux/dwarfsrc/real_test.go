package dwarfsrc

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/types"
)

// realEnv names the debug vmlinux of Debian's 6.1.0-50-686-pae kernel
// (testdata/fetch.sh i386 puts it in
// testdata/.cache/x/i386/dbg-6.1.0-50-686-pae/vmlinux; 315 MB, not
// committed). Its BTF, made by pahole from the same DWARF, is committed.
const (
	realEnv    = "XASCRIPT_DWARF_VMLINUX"
	realBTFEnv = "XASCRIPT_DWARF_BTF"
	realBTF    = "../../../testdata/kernels/6.1.0-50-686-pae/vmlinux.btf.zst"
)

// TestRealDWARFAgainstBTF compares the layouts read from the debug
// vmlinux with those btfsrc reads from the BTF pahole made of the same
// DWARF. Without XASCRIPT_DWARF_VMLINUX it checks the committed fixtures
// against the C compiler instead, and says so.
func TestRealDWARFAgainstBTF(t *testing.T) {
	path := os.Getenv(realEnv)
	if path == "" {
		t.Logf("%s unset: checking the committed fixtures instead of the 315 MB vmlinux", realEnv)
		for _, arch := range []string{"m32", "m64"} {
			for _, kind := range []string{"o", "elf"} {
				checkFixture(t, arch, filepath.Join("testdata", "fixture"+arch[1:]+"."+kind))
			}
		}
		return
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s=%s: %v", realEnv, path, err)
	}
	opt := unpack.Options{CacheDir: t.TempDir()}
	start := time.Now()
	dw, err := Load(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer dw.Close()
	if _, err := dw.Sizeof("list_head"); err != nil {
		t.Fatal(err)
	}
	t.Logf("cold Load and index: %v", time.Since(start))
	// The BTF must describe the same kernel build as the vmlinux: Debian's
	// archive moves on to newer ABIs, so make test-guests passes the BTF it
	// made from the kernel it fetched (XASCRIPT_DWARF_BTF).
	btfPath := realBTF
	if p := os.Getenv(realBTFEnv); p != "" {
		btfPath = p
	}
	bt, err := btfsrc.Load(btfPath, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer bt.Close()

	if dw.PointerSize() != bt.PointerSize() {
		t.Errorf("PointerSize = %d, BTF says %d", dw.PointerSize(), bt.PointerSize())
	}
	// The one type graph from both: every member of the structs monitors
	// read is the same Field (offset, bits, and the size, kind, signedness
	// and canonical name of its type).
	total := 0
	for _, s := range []string{"module", "task_struct", "mm_struct", "vm_area_struct", "list_head", "hlist_node",
		"dentry", "inode", "file", "path", "qstr", "sock", "sock_common", "sk_buff", "super_block", "cred",
		"files_struct", "fdtable", "mount", "vfsmount", "net_device", "pid", "upid", "kobject", "kset"} {
		n, diffs := types.CompareStruct(bt.Graph(), dw.Graph(), s)
		for _, d := range diffs {
			t.Errorf("BTF vs DWARF: %s", d)
		}
		total += n
	}
	if total < 900 {
		t.Errorf("only %d members compared", total)
	}
	t.Logf("%d members of 25 structs are the same Field in BTF and DWARF", total)
	for _, q := range [][2]string{{"module", "name"}, {"module", "list"}, {"task_struct", "comm"},
		{"task_struct", "tasks"}, {"module", "core_layout.size"}, {"list_head", "prev"}, {"task_struct", "tasks.next"}} {
		want, err := bt.Offsetof(q[0], q[1])
		if err != nil {
			t.Fatalf("btf: %v", err)
		}
		if got, err := dw.Offsetof(q[0], q[1]); err != nil || got != want {
			t.Errorf("Offsetof(%s, %s) = %d, %v; BTF says %d", q[0], q[1], got, err, want)
		}
	}
	for _, n := range []string{"struct module", "task_struct", "list_head", "long unsigned int", "u64", "pid_t", "struct page *"} {
		want, err := bt.Sizeof(n)
		if err != nil {
			t.Fatalf("btf: %v", err)
		}
		if got, err := dw.Sizeof(n); err != nil || got != want {
			t.Errorf("Sizeof(%s) = %d, %v; BTF says %d", n, got, err, want)
		}
	}

	// Every struct the index knows, by BTF size: compare sizes of all,
	// members of the largest.
	type sized struct {
		name string
		size uint64
	}
	var all []sized
	sizeDiff := 0
	for _, name := range dw.indexNames('s') {
		want, err := bt.Sizeof("struct " + name)
		if err != nil {
			continue // pahole leaves out some types; those are not a disagreement
		}
		all = append(all, sized{name, want})
		if got, err := dw.Sizeof("struct " + name); err != nil || got != want {
			// Two units may define different structs of one name; BTF keeps
			// both, the index the first: rare, so count them.
			sizeDiff++
			if sizeDiff <= 5 {
				t.Logf("Sizeof(struct %s) = %d, %v; BTF says %d", name, got, err, want)
			}
		}
	}
	if len(all) < 5000 || sizeDiff > len(all)/100 {
		t.Errorf("%d of %d struct sizes disagree with BTF", sizeDiff, len(all))
	}
	t.Logf("%d of %d struct sizes agree with BTF", len(all)-sizeDiff, len(all))
	slices.SortFunc(all, func(a, b sized) int { return cmp.Or(cmp.Compare(b.size, a.size), strings.Compare(a.name, b.name)) })
	checked, structs := 0, 0
	for _, s := range all {
		if structs >= 20 && checked >= 500 {
			break
		}
		st, err := types.Composite(bt.Graph(), "struct "+s.name)
		if err != nil {
			t.Fatalf("btf: %v", err)
		}
		structs++
		for _, f := range st.Members {
			if f.Name == "" {
				continue
			}
			checked++
			got, err := dw.Offsetof("struct "+s.name, f.Name)
			if f.BitSize != 0 {
				if !errors.Is(err, vmi.ErrUnsupported) {
					t.Errorf("Offsetof(%s, %s) = %d, %v; BTF says a bitfield", s.name, f.Name, got, err)
				}
				continue
			}
			if err != nil || got != f.BitOffset/8 {
				t.Errorf("Offsetof(%s, %s) = %d, %v; BTF says %d", s.name, f.Name, got, err, f.BitOffset/8)
			}
		}
	}
	if checked < 500 {
		t.Errorf("only %d members compared", checked)
	}
	t.Logf("%d members of the %d largest structs agree with BTF", checked, structs)
}

// indexNames lists the names of one kind in the index (tests only).
func (t *Types) indexNames(kind byte) []string {
	if err := t.ensureIndex(); err != nil {
		return nil
	}
	var out []string
	if t.idx.m != nil {
		for k := range t.idx.m {
			if k[0] == kind {
				out = append(out, k[1:])
			}
		}
		slices.Sort(out)
		return out
	}
	for i := range t.idx.n {
		if k := t.idx.key(i); len(k) > 0 && k[0] == kind {
			out = append(out, string(k[1:]))
		}
	}
	return out
}

// BenchmarkRealWarm is a warm run's cost: Load plus three questions.
func BenchmarkRealWarm(b *testing.B) {
	path := os.Getenv(realEnv)
	if path == "" {
		b.Skipf("%s unset", realEnv)
	}
	opt := unpack.Options{CacheDir: b.TempDir()}
	run := func() {
		ty, err := Load(path, opt)
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range [][2]string{{"module", "name"}, {"module", "list"}, {"task_struct", "comm"}} {
			if _, err := ty.Offsetof(q[0], q[1]); err != nil {
				b.Fatal(err)
			}
		}
		ty.Close()
	}
	start := time.Now()
	run()
	b.Logf("cold: %v", time.Since(start))
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}
