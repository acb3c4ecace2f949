package vmcoreinfo

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux/kernelimage"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// truth is what the guests testdata/build-guest.sh makes printed about
// themselves (truth.json); kallsyms.zst holds their /proc/kallsyms.
type truth struct {
	Arch          string            `json:"arch"`
	KernelRelease string            `json:"kernel_release"`
	Paging        string            `json:"paging"`
	Symbols       map[string]string `json:"symbols"`
	KASLR         struct {
		VirtualSlide string `json:"virtual_slide"`
	} `json:"kaslr"`
}

func loadTruth(tb testing.TB, variant string) truth {
	var tr truth
	testimages.LoadTruth(tb, variant, &tr)
	return tr
}

// pointerValued SYMBOL()s hold a pointer's value, not the variable's
// address (VMCOREINFO_SYMBOL_ARRAY of a pointer): kallsyms has the variable.
var pointerValued = map[string]bool{"mem_section": true, "vmemmap": true}

// TestRealImages: every committed guest's kernel left VMCOREINFO in RAM;
// a scan for its release finds it, it has a build id (and on x86-64 the
// one of the vmlinuz it booted), and every SYMBOL() it names is where the
// guest's own /proc/kallsyms (or, for the i386 kernel's data symbols, its
// System.map plus the slide) says.
func TestRealImages(t *testing.T) {
	for _, c := range testimages.All {
		t.Run(c.String(), func(t *testing.T) {
			tr := loadTruth(t, c.Variant)
			tg, err := dump.Open(testimages.Path(t, c.Variant, c.File), dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			start := time.Now()
			f, err := Scan(tg, tg.MemoryMap(), tr.KernelRelease)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s in %v: %d bytes, %d symbols, build id %s", f.How, time.Since(start), len(f.Raw), len(f.Info.Symbols), f.Info.BuildID)
			in := f.Info
			if in.OSRelease != tr.KernelRelease || in.PageSize != 4096 || in.Malformed != 0 {
				t.Errorf("release %q, page size %d, %d malformed: %v", in.OSRelease, in.PageSize, in.Malformed, in.Skipped)
			}
			if id, err := hex.DecodeString(in.BuildID); err != nil || len(id) != 20 {
				t.Errorf("build id %q: want 20 bytes of hex", in.BuildID)
			}

			compared := 0
			for name, want := range tr.Symbols {
				if got, ok := in.Symbol(name); ok {
					compared++
					if got != testimages.Hex(t, name, want) {
						t.Errorf("SYMBOL(%s) = %#x, truth.json %s", name, got, want)
					}
				}
			}
			kallsyms, err := symbols.Load(testimages.Path(t, c.Variant, "kallsyms.zst"), unpack.Options{})
			if err != nil {
				t.Fatal(err)
			}
			inKallsyms := 0
			for name, got := range in.Symbols {
				if want, ok := kallsyms.Lookup(name); ok && !pointerValued[name] {
					inKallsyms++
					if got != want {
						t.Errorf("SYMBOL(%s) = %#x, /proc/kallsyms %#x", name, got, want)
					}
				}
			}
			t.Logf("%d SYMBOL()s compared with truth.json, %d with /proc/kallsyms", compared, inKallsyms)
			if compared < 3 {
				t.Errorf("only %d of truth.json's symbols are in VMCOREINFO", compared)
			}

			if tr.Arch == "i386" {
				if pae := tr.Paging == "pae"; in.Configs["X86_PAE"] != pae {
					t.Errorf("CONFIG_X86_PAE=y is %v on a kernel with %s paging", in.Configs["X86_PAE"], tr.Paging)
				}
				return
			}
			if !in.HasKernelOffset || in.KernelOffset != testimages.Hex(t, "virtual_slide", tr.KASLR.VirtualSlide) {
				t.Errorf("KERNELOFFSET %#x (%v), the guest's slide %s", in.KernelOffset, in.HasKernelOffset, tr.KASLR.VirtualSlide)
			}
			if l5, want := in.Numbers["pgtable_l5_enabled"], tr.Paging == "5-level"; (l5 == 1) != want {
				t.Errorf("NUMBER(pgtable_l5_enabled) = %d on %s paging", l5, tr.Paging)
			}
			if want := vmlinuzBuildID(t, tr.KernelRelease); in.BuildID != want {
				t.Errorf("build id %s, the vmlinuz's is %s", in.BuildID, want)
			}
		})
	}
}

// vmlinuzBuildID is the GNU build id of the committed vmlinuz of a
// release, extracted once per test binary (decompressing takes ~1 s).
var buildIDs = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

func vmlinuzBuildID(t testing.TB, release string) string {
	t.Helper()
	buildIDs.Lock()
	defer buildIDs.Unlock()
	if id, ok := buildIDs.m[release]; ok {
		return id
	}
	img, err := os.ReadFile(filepath.Join(testimages.Root(t), "..", "kernels", release, "vmlinuz"))
	if err != nil {
		t.Fatalf("vmlinuz missing (testdata/build-guest.sh makes it): %v", err)
	}
	var out bytes.Buffer
	if err := kernelimage.ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, s := range ef.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		data, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		if id = gnuBuildID(data); id != "" {
			break
		}
	}
	if id == "" {
		t.Fatalf("vmlinuz %s: no GNU build-id note", release)
	}
	buildIDs.m[release] = id
	return id
}

// gnuBuildID finds NT_GNU_BUILD_ID (3) owned by "GNU" in ELF notes.
func gnuBuildID(notes []byte) string {
	for len(notes) >= 12 {
		nameSz, descSz, typ := binary.LittleEndian.Uint32(notes), binary.LittleEndian.Uint32(notes[4:]), binary.LittleEndian.Uint32(notes[8:])
		nameEnd := 12 + (uint64(nameSz)+3)&^3
		descEnd := nameEnd + (uint64(descSz)+3)&^3
		if descEnd > uint64(len(notes)) {
			return ""
		}
		if typ == 3 && nameSz == 4 && string(notes[12:15]) == "GNU" {
			return hex.EncodeToString(notes[nameEnd : nameEnd+uint64(descSz)])
		}
		notes = notes[descEnd:]
	}
	return ""
}

// BenchmarkScanReal: the scan a text-only kernel's first run pays, on the
// i386 image (256 MiB).
func BenchmarkScanReal(b *testing.B) {
	tr := loadTruth(b, "i386-pae")
	tg, err := dump.Open(testimages.Path(b, "i386-pae", "mem.raw.zst"), dump.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	var ranges []vmi.Range = tg.MemoryMap()
	for b.Loop() {
		if _, err := Scan(tg, ranges, tr.KernelRelease); err != nil {
			b.Fatal(err)
		}
	}
}
