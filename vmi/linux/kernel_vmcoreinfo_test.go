package linux

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/linux/vmcoreinfo"
)

type vmciTruth struct {
	Arch          string            `json:"arch"`
	Banner        string            `json:"banner"`
	KernelRelease string            `json:"kernel_release"`
	Symbols       map[string]string `json:"symbols"`
}

func openImage(t *testing.T, variant, file string) (vmi.Target, vmciTruth, string) {
	t.Helper()
	var tr vmciTruth
	testimages.LoadTruth(t, variant, &tr)
	tg, err := dump.Open(testimages.Path(t, variant, file), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg, tr, filepath.Join(testimages.Root(t), variant)
}

// TestRealVmcoreinfo: with no profile flags, every committed guest's
// VMCOREINFO is found (through vmcoreinfo_data where kallsyms names it,
// by a scan on the text-only i386 kernel, then where the cache says), it
// is the one a scan of RAM finds, and Symbol answers with its entries
// exactly what the guest's /proc/kallsyms (or System.map plus the slide)
// says.
func TestRealVmcoreinfo(t *testing.T) {
	for _, c := range []struct{ variant, file string }{
		{"x86_64-4level", "mem.elf.zst"},
		{"x86_64-4level", "mem.raw.zst"},
		{"x86_64-5level", "mem.elf.zst"},
		{"x86_64-highmem", "mem.elf.zst"},
		{"x86_64-6.12", "mem.elf.zst"},
		{"i386-pae", "mem.elf.zst"},
		{"i386-pae", "mem.raw.zst"},
		{"i386-legacy", "mem.elf.zst"},
		{"i386-legacy", "mem.raw.zst"},
	} {
		t.Run(c.variant+"/"+c.file, func(t *testing.T) {
			tg, tr, dir := openImage(t, c.variant, c.file)
			scan, err := vmcoreinfo.Scan(tg, tg.MemoryMap(), tr.KernelRelease)
			if err != nil {
				t.Fatal(err)
			}
			cache := unpack.Options{CacheDir: t.TempDir()}
			for _, pass := range []string{"cold", "warm"} {
				k, err := Open(tg, Options{Unpack: cache})
				if err != nil {
					t.Fatalf("%s: %v", pass, err)
				}
				f, err := k.Vmcoreinfo()
				if err != nil {
					t.Fatalf("%s: %v", pass, err)
				}
				t.Logf("%s: VMCOREINFO %s", pass, f.How)
				if f.PA != scan.PA || f.Info.BuildID != scan.Info.BuildID || f.Info.BuildID == "" {
					t.Errorf("%s: found at %#x with build id %q; a scan finds %#x, %q", pass, f.PA, f.Info.BuildID, scan.PA, scan.Info.BuildID)
				}
				switch {
				case tr.Arch != "i386" && f.VA == 0:
					t.Errorf("%s: not found through vmcoreinfo_data: %s", pass, f.How)
				case tr.Arch == "i386" && pass == "warm" && !strings.Contains(f.How, "cached profile"):
					t.Errorf("warm: not found where the cache said: %s", f.How)
				}
				if tr.Arch == "i386" != k.TextSymbolsOnly() {
					t.Errorf("%s: text symbols only: %v", pass, k.TextSymbolsOnly())
				}
				if got := k.Describe().Banner; got != tr.Banner {
					t.Errorf("%s: banner %q, the guest's %q", pass, got, tr.Banner)
				}
				checkVmcoreinfoSymbols(t, k, f.Info, tr, dir)
				s := k.VmcoreinfoSummary()
				if !s.Found || s.Symbols != len(f.Info.Symbols) || s.Added == 0 || s.BuildID != f.Info.BuildID {
					t.Errorf("%s: summary %+v", pass, s)
				}
			}
		})
	}
}

// checkVmcoreinfoSymbols compares Symbol for every VMCOREINFO entry it
// answers with truth.json and the guest's /proc/kallsyms.
func checkVmcoreinfoSymbols(t *testing.T, k *Kernel, in *vmcoreinfo.Info, tr vmciTruth, dir string) {
	t.Helper()
	kallsyms, err := symbols.Load(filepath.Join(dir, "kallsyms.zst"), unpack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name := range in.Symbols {
		got, err := k.Symbol(name)
		if pointerValued[name] {
			if _, ok := kallsyms.Lookup(name); !ok && err == nil {
				t.Errorf("symbol(%s) answered from a pointer-valued VMCOREINFO entry: %#x", name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("symbol(%s): %v", name, err)
			continue
		}
		if want, ok := tr.Symbols[name]; ok {
			n++
			if got != testimages.Hex(t, name, want) {
				t.Errorf("symbol(%s) = %#x, truth.json %s", name, got, want)
			}
		}
		if want, ok := kallsyms.Lookup(name); ok {
			n++
			if got != want {
				t.Errorf("symbol(%s) = %#x, /proc/kallsyms %#x", name, got, want)
			}
		}
	}
	if n < 3 {
		t.Errorf("only %d comparisons", n)
	}
}

// TestProfileCacheBuildID: a derived profile is cached under the kernel's
// banner and build id; an entry whose build id is not the guest's (here a
// tampered meta.json) is not used but derived afresh, and replaced.
func TestProfileCacheBuildID(t *testing.T) {
	for _, variant := range []string{"x86_64-4level", "i386-pae"} {
		t.Run(variant, func(t *testing.T) {
			tg, _, _ := openImage(t, variant, "mem.elf.zst")
			cache := unpack.Options{CacheDir: t.TempDir()}
			k, err := Open(tg, Options{Unpack: cache})
			if err != nil {
				t.Fatal(err)
			}
			f, err := k.Vmcoreinfo()
			if err != nil {
				t.Fatal(err)
			}
			metas, _ := filepath.Glob(filepath.Join(cache.CacheDir, "profiles", "*", "meta.json"))
			if len(metas) != 1 {
				t.Fatalf("%d cache entries: %v", len(metas), metas)
			}
			entry := filepath.Dir(metas[0])
			m, err := readMeta(entry)
			if err != nil {
				t.Fatal(err)
			}
			if m.BuildID != f.Info.BuildID || filepath.Base(entry) != profileKey(m) {
				t.Fatalf("cached build id %q (guest %q), entry %s, key %s", m.BuildID, f.Info.BuildID, filepath.Base(entry), profileKey(m))
			}
			if k, err := Open(tg, Options{Unpack: cache}); err != nil || !strings.HasPrefix(k.SymbolsFrom, "profile cache") {
				t.Fatalf("warm: %v, symbols from %s", err, k.SymbolsFrom)
			}

			// Another build with the same banner.
			m.BuildID = strings.Repeat("0", 40)
			raw, _ := json.Marshal(m)
			if err := os.WriteFile(metas[0], raw, 0o644); err != nil {
				t.Fatal(err)
			}
			k, err = Open(tg, Options{Unpack: cache})
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(k.SymbolsFrom, "profile cache") {
				t.Fatalf("a cached profile of build id %s was used for a guest of build id %s", m.BuildID, f.Info.BuildID)
			}
			if notes := strings.Join(k.Describe().Notes, "\n"); !strings.Contains(notes, "not used") {
				t.Errorf("no note about the cache entry passed over: %q", notes)
			}
			if m, err := readMeta(entry); err != nil || m.BuildID != f.Info.BuildID {
				t.Errorf("the entry was not replaced: build id %q, %v", m.BuildID, err)
			}
			if k, err := Open(tg, Options{Unpack: cache}); err != nil || !strings.HasPrefix(k.SymbolsFrom, "profile cache") {
				t.Fatalf("warm again: %v, symbols from %s", err, k.SymbolsFrom)
			}
		})
	}
}

// TestI386MissingSymbol: a data symbol that neither the text-only kallsyms
// nor VMCOREINFO names is an error saying so and what to give.
func TestI386MissingSymbol(t *testing.T) {
	tg, _, _ := openImage(t, "i386-pae", "mem.raw.zst")
	k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Symbol("modules")
	t.Log(err)
	if !errors.Is(err, vmi.ErrNotFound) || len(err.Error()) > 160 {
		t.Errorf("err = %v (%d bytes): want one short line that wraps ErrNotFound", err, len(err.Error()))
	}
	for _, want := range []string{`symbol "modules": not in the kernel's kallsyms in memory (text only`, "CONFIG_KALLSYMS_ALL", "nor in its VMCOREINFO", "--symbols System.map"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
}

// BenchmarkProfileWarmTextOnly: Open with the profile cached, on the
// text-only i386 kernel (VMCOREINFO read where the cache says, no scan).
func BenchmarkProfileWarmTextOnly(b *testing.B) {
	tg, err := dump.Open(filepath.Join("..", "..", "testdata", "images", "i386-pae", "mem.elf.zst"), dump.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	cache := unpack.Options{CacheDir: b.TempDir()}
	if _, err := Open(tg, Options{Unpack: cache}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		k, err := Open(tg, Options{Unpack: cache})
		if err != nil {
			b.Fatal(err)
		}
		if f, err := k.Vmcoreinfo(); err != nil || !strings.Contains(f.How, "cached profile") {
			b.Fatalf("VMCOREINFO %v, %v", f, err)
		}
	}
}

// maskedTarget reads zeros in [lo, hi): memory the guest wiped.
type maskedTarget struct {
	vmi.Target
	lo, hi uint64
}

func (m maskedTarget) ReadPhys(buf []byte, pa uint64) error {
	if err := m.Target.ReadPhys(buf, pa); err != nil {
		return err
	}
	for i := range buf {
		if a := pa + uint64(i); a >= m.lo && a < m.hi {
			buf[i] = 0
		}
	}
	return nil
}

// TestI386NoVmcoreinfo: a text-only kernel whose VMCOREINFO is gone cannot
// be located from memory; the error says why and what to give.
func TestI386NoVmcoreinfo(t *testing.T) {
	tg, tr, _ := openImage(t, "i386-pae", "mem.raw.zst")
	f, err := vmcoreinfo.Scan(tg, tg.MemoryMap(), tr.KernelRelease)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(maskedTarget{tg, f.PA, f.PA + 4096}, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	t.Log(err)
	for _, want := range []string{"text symbols only", "CONFIG_KALLSYMS_ALL", "no VMCOREINFO", "--symbols System.map"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
}

// withNote is a real dump given a VMCOREINFO note, as kdump's /proc/vmcore
// carries one.
type withNote struct {
	vmi.Target
	note string
}

func (w withNote) VMCoreInfo() (string, bool) { return w.note, true }

// TestVmcoreinfoFromDumpNote: a dump's VMCOREINFO note is read before
// memory (in a kdump vmcore the copy vmcoreinfo_data points at lies in the
// crashkernel= region, which the vmcore leaves out); a note that does not
// parse is passed over for the kernel's own copy.
func TestVmcoreinfoFromDumpNote(t *testing.T) {
	tg, tr, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	scan, err := vmcoreinfo.Scan(tg, tg.MemoryMap(), tr.KernelRelease)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, note, how string
	}{
		{"note", string(scan.Raw), "in the dump's VMCOREINFO note"},
		{"bad note", "not vmcoreinfo\x00\xff", "(the kernel's vmcoreinfo_data)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := Open(withNote{tg, c.note}, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			f, err := k.Vmcoreinfo()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(f.How, c.how) {
				t.Errorf("found %s, want %s", f.How, c.how)
			}
			if f.Info.BuildID != scan.Info.BuildID || f.Info.OSRelease != tr.KernelRelease {
				t.Errorf("build id %q, release %q; memory has %q, %q", f.Info.BuildID, f.Info.OSRelease, scan.Info.BuildID, tr.KernelRelease)
			}
		})
	}
}
