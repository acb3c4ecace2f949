package btfsrc

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/kernelimage"
)

// realVmlinuz is the Debian 6.1 cloud kernel that testdata/build-guest.sh
// puts in testdata/kernels/<release>/vmlinuz (LZ4 bzImage with .BTF).
// XASCRIPT_TEST_VMLINUZ overrides it.
func realVmlinuz(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("XASCRIPT_TEST_VMLINUZ"); p != "" {
		return p
	}
	m, _ := filepath.Glob("../../../testdata/kernels/*-cloud-amd64/vmlinuz")
	if len(m) == 0 {
		tb.Fatal("no testdata/kernels/*-cloud-amd64/vmlinuz: run testdata/build-guest.sh x86_64-4level, or set XASCRIPT_TEST_VMLINUZ")
	}
	return m[0]
}

// sharedCache keeps one extraction per test binary run: extracting the
// vmlinuz costs ~1 s.
var sharedCache string

func cacheOpt(tb testing.TB) unpack.Options {
	if sharedCache == "" {
		d, err := os.MkdirTemp("", "btfsrc-test-cache")
		if err != nil {
			tb.Fatal(err)
		}
		sharedCache = d
	}
	return unpack.Options{CacheDir: sharedCache}
}

func TestMain(m *testing.M) {
	// Anything that still uses the default cache gets a folder of its own.
	dir, err := os.MkdirTemp("", "xascript-test-cache-")
	if err == nil {
		os.Setenv("XASCRIPT_CACHE_DIR", dir)
	}
	code := m.Run()
	if sharedCache != "" {
		os.RemoveAll(sharedCache)
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// TestRealOffsets checks offsets in Debian's 6.1 cloud kernel against
// pahole 1.24 run on the same BTF (pahole -C module / list_head /
// task_struct): these members have not moved within the 6.1 series.
func TestRealOffsets(t *testing.T) {
	ty, err := Load(realVmlinuz(t), cacheOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ty.Close()
	for _, c := range []struct {
		strct, member string
		want          uint64
	}{
		{"module", "list", 8},
		{"module", "name", 24},
		{"list_head", "next", 0},
		{"list_head", "prev", 8},
		{"module", "core_layout.size", 328},
		{"task_struct", "comm", 2976},
	} {
		got, err := ty.Offsetof(c.strct, c.member)
		if err != nil || got != c.want {
			t.Errorf("Offsetof(%s, %s) = %d, %v; want %d", c.strct, c.member, got, err, c.want)
		}
	}
	for name, want := range map[string]uint64{"struct module": 896, "list_head": 16, "task_struct": 9728} {
		if got, err := ty.Sizeof(name); err != nil || got != want {
			t.Errorf("Sizeof(%s) = %d, %v; want %d", name, got, err, want)
		}
	}
	if ty.PointerSize() != 8 {
		t.Errorf("PointerSize = %d", ty.PointerSize())
	}
}

// TestRealAgainstCilium compares every member of some large kernel structs
// (anonymous members flattened) with cilium/ebpf's independent decoder.
func TestRealAgainstCilium(t *testing.T) {
	ty, err := Load(realVmlinuz(t), cacheOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ty.Close()
	checked, err := CrossCheck(ty, []string{"module", "task_struct", "mm_struct", "list_head", "file", "inode",
		"sk_buff", "net_device", "page", "super_block", "dentry", "cred", "vm_area_struct"})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 800 {
		t.Errorf("only %d members checked", checked)
	}
	t.Logf("%d members agree with cilium", checked)
}

// TestLoadFormats loads the same BTF as an ELF, a raw blob and a
// gzip-compressed raw blob.
func TestLoadFormats(t *testing.T) {
	path := realVmlinuz(t)
	image, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vmlinux bytes.Buffer
	if err := kernelimage.ExtractVmlinux(bytes.NewReader(image), int64(len(image)), &vmlinux); err != nil {
		t.Fatal(err)
	}
	raw, _, err := ELFSection(vmlinux.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	dir := t.TempDir()
	files := map[string][]byte{"vmlinux": vmlinux.Bytes(), "btf.raw": raw, "btf.raw.gz": gz.Bytes(), "junk": []byte("hello")}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opt := unpack.Options{CacheDir: filepath.Join(dir, "cache")}
	for _, name := range []string{"vmlinux", "btf.raw", "btf.raw.gz"} {
		ty, err := Load(filepath.Join(dir, name), opt)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if off, err := ty.Offsetof("module", "name"); err != nil || off != 24 {
			t.Errorf("%s: Offsetof(module, name) = %d, %v", name, off, err)
		}
		ty.Close()
	}
	if _, err := Load(filepath.Join(dir, "junk"), opt); err == nil {
		t.Errorf("Load(junk) succeeded")
	}
	// An ELF without .BTF names what is missing.
	if _, _, err := ELFSection(stripBTF(t, vmlinux.Bytes())); err == nil || !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("ELFSection without .BTF = %v", err)
	}
}

// BenchmarkLoadBTFWarm is the per-run cost once the vmlinuz's .BTF is
// cached: Load plus three member lookups in different structs.
func BenchmarkLoadBTFWarm(b *testing.B) {
	path, opt := realVmlinuz(b), cacheOpt(b)
	if ty, err := Load(path, opt); err != nil {
		b.Fatal(err)
	} else {
		ty.Close()
	}
	b.ReportAllocs()
	for b.Loop() {
		ty, err := Load(path, opt)
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range [][2]string{{"module", "name"}, {"module", "list"}, {"list_head", "next"}, {"task_struct", "comm"}} {
			if _, err := ty.Offsetof(q[0], q[1]); err != nil {
				b.Fatal(err)
			}
		}
		ty.Close()
	}
}

// BenchmarkOffsetof is a memoized lookup.
func BenchmarkOffsetof(b *testing.B) {
	ty, err := Load(realVmlinuz(b), cacheOpt(b))
	if err != nil {
		b.Fatal(err)
	}
	defer ty.Close()
	ty.Offsetof("module", "core_layout.size")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ty.Offsetof("module", "core_layout.size"); err != nil {
			b.Fatal(err)
		}
	}
}

// stripBTF renames .BTF in the section-name table of a copy of an ELF.
func stripBTF(tb testing.TB, elf []byte) []byte {
	out := bytes.Clone(elf)
	i := bytes.LastIndex(out, []byte("\x00.BTF\x00")) // .shstrtab is near the end
	if i < 0 {
		tb.Fatal("no .BTF section name")
	}
	out[i+2] = 'X'
	return out
}
