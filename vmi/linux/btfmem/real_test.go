package btfmem

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/kernelimage"
)

// truth: where the kernel and its __start_BTF were in the guests
// testdata/build-guest.sh makes (truth.json).
type truth struct {
	Arch          string            `json:"arch"`
	KernelRelease string            `json:"kernel_release"`
	Symbols       map[string]string `json:"symbols"`
	KASLR         struct {
		KernelPhys map[string]struct{ Start, End string } `json:"kernel_phys"`
	} `json:"kaslr"`
	RAM []struct{ Start, End string } `json:"ram"`
}

func loadTruth(tb testing.TB, variant string) truth {
	var tr truth
	testimages.LoadTruth(tb, variant, &tr)
	return tr
}

func openDump(t testing.TB, variant, file string) vmi.Target {
	t.Helper()
	p := testimages.Path(t, variant, file)
	// The default cache: each dump is decompressed once, not per test run.
	tg, err := dump.Open(p, dump.Options{})
	if err != nil {
		t.Fatalf("dump.Open: %v", err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// physAt is an io.ReaderAt over [base, base+size) of guest-physical memory.
type physAt struct {
	p    vmi.PhysReader
	base uint64
}

func (r physAt) ReadAt(b []byte, off int64) (int, error) {
	if err := r.p.ReadPhys(b, r.base+uint64(off)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// kernelWindow is the search window the locator will hand Find: generous
// around the kernel's physical code start, clipped to RAM.
func kernelWindow(t testing.TB, tr truth) (base, size uint64) {
	code := testimages.Hex(t, "Kernel code", tr.KASLR.KernelPhys["Kernel code"].Start)
	base = code - min(code, 16<<20)
	end := base + 96<<20
	var ramEnd uint64
	for _, r := range tr.RAM {
		if s, e := testimages.Hex(t, "ram", r.Start), testimages.Hex(t, "ram", r.End)+1; s <= code && code < e {
			ramEnd = e
		}
	}
	if ramEnd == 0 {
		t.Fatalf("no RAM range holds the kernel code at %#x", code)
	}
	return base, min(end, ramEnd) - base
}

// vmlinuzBTF is the .BTF section of the committed vmlinuz of a release,
// extracted once per test binary (decompressing a vmlinuz takes ~1 s).
var vmlinuzBTF = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

func vmlinuzPath(t testing.TB, release string) string {
	p := filepath.Join(testimages.Root(t), "..", "kernels", release, "vmlinuz")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("vmlinuz missing (testdata/build-guest.sh makes it): %v", err)
	}
	return p
}

func btfOfVmlinuz(t testing.TB, release string) []byte {
	vmlinuzBTF.Lock()
	defer vmlinuzBTF.Unlock()
	if b, ok := vmlinuzBTF.m[release]; ok {
		return b
	}
	img, err := os.ReadFile(vmlinuzPath(t, release))
	if err != nil {
		t.Fatal(err)
	}
	var elf bytes.Buffer
	if err := kernelimage.ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &elf); err != nil {
		t.Fatalf("vmlinuz %s: %v", release, err)
	}
	sec, _, err := btfsrc.ELFSection(elf.Bytes())
	if err != nil {
		t.Fatalf("vmlinuz %s: %v", release, err)
	}
	b := bytes.Clone(sec)
	vmlinuzBTF.m[release] = b
	return b
}

// layoutQueries are what the Lua examples and the locator ask for.
var layoutQueries = [][2]string{
	{"module", "name"}, {"module", "list"}, {"module", "state"},
	{"list_head", "prev"}, {"task_struct", "comm"}, {"task_struct", "tasks"},
	{"task_struct", "pid"}, {"task_struct", "mm"}, {"mm_struct", "pgd"},
}

func TestRealImages(t *testing.T) {
	for _, c := range testimages.X86_64() {
		t.Run(c.String(), func(t *testing.T) {
			tr := loadTruth(t, c.Variant)
			tg := openDump(t, c.Variant, c.File)
			base, size := kernelWindow(t, tr)

			start := time.Now()
			raw, off, err := Find(physAt{tg, base}, int64(size))
			took := time.Since(start)
			if err != nil {
				t.Fatalf("Find in [%#x,+%#x): %v", base, size, err)
			}
			t.Logf("found %d bytes of BTF at physical %#x in %v (window [%#x,+%#x))",
				len(raw), base+uint64(off), took, base, size)

			// __start_BTF's physical address: the kernel image is mapped
			// linearly from _text to the "Kernel code" start.
			text := testimages.Hex(t, "_text", tr.Symbols["_text"])
			code := testimages.Hex(t, "Kernel code", tr.KASLR.KernelPhys["Kernel code"].Start)
			startBTF := testimages.Hex(t, "__start_BTF", tr.Symbols["__start_BTF"])
			stopBTF := testimages.Hex(t, "__stop_BTF", tr.Symbols["__stop_BTF"])
			if want := startBTF - text + code; base+uint64(off) != want {
				t.Errorf("found at physical %#x, __start_BTF is at %#x", base+uint64(off), want)
			}
			if uint64(len(raw)) != stopBTF-startBTF {
				t.Errorf("found %d bytes, __stop_BTF - __start_BTF = %d", len(raw), stopBTF-startBTF)
			}
			if want := btfOfVmlinuz(t, tr.KernelRelease); !bytes.Equal(raw, want) {
				t.Errorf("the %d bytes found differ from the vmlinuz's %d-byte .BTF", len(raw), len(want))
			}

			// Layouts from memory equal those from the vmlinuz.
			mem, err := btfsrc.Parse(raw)
			if err != nil {
				t.Fatalf("btfsrc.Parse: %v", err)
			}
			file, err := btfsrc.Load(vmlinuzPath(t, tr.KernelRelease), unpack.Options{CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			for _, q := range layoutQueries {
				got, err1 := mem.Offsetof(q[0], q[1])
				want, err2 := file.Offsetof(q[0], q[1])
				if err1 != nil || err2 != nil || got != want {
					t.Errorf("offsetof(%s, %s): memory %d (%v), vmlinuz %d (%v)", q[0], q[1], got, err1, want, err2)
				}
			}
			for _, s := range []string{"module", "task_struct", "list_head"} {
				got, err1 := mem.Sizeof(s)
				want, err2 := file.Sizeof(s)
				if err1 != nil || err2 != nil || got != want {
					t.Errorf("sizeof(%s): memory %d (%v), vmlinuz %d (%v)", s, got, err1, want, err2)
				}
			}
			name, _ := mem.Offsetof("module", "name")
			t.Logf("offsetof(module, name) = %d", name)
		})
	}
}

// The 686-pae kernel carries no BTF: all of its RAM is searched in vain and
// the error says why.
func TestRealNoBTF(t *testing.T) {
	tr := loadTruth(t, "i386-pae")
	if _, ok := tr.Symbols["__start_BTF"]; ok {
		t.Fatal("i386-pae has __start_BTF: the premise of this test is gone")
	}
	tg := openDump(t, "i386-pae", "mem.raw.zst")
	var size uint64
	for _, r := range tg.MemoryMap() {
		size = max(size, r.End)
	}
	start := time.Now()
	_, _, err := Find(physAt{tg, 0}, int64(size))
	t.Logf("searched %#x bytes in %v: %v", size, time.Since(start), err)
	if !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "CONFIG_DEBUG_INFO_BTF") {
		t.Fatalf("err = %v, want ErrNotFound naming CONFIG_DEBUG_INFO_BTF", err)
	}
}

// BenchmarkFindReal: the search the locator will run, on the 4-level raw
// image (target: under 100 ms).
func BenchmarkFindReal(b *testing.B) {
	tr := loadTruth(b, "x86_64-4level")
	tg := openDump(b, "x86_64-4level", "mem.raw.zst")
	base, size := kernelWindow(b, tr)
	b.SetBytes(int64(size))
	for b.Loop() {
		if _, _, err := Find(physAt{tg, base}, int64(size)); err != nil {
			b.Fatal(err)
		}
	}
}
