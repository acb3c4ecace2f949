package linux

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// wrongCR3 is a real dump whose CPU state names another page-table root.
type wrongCR3 struct {
	vmi.Target
	cr3 uint64
}

func (w wrongCR3) CPU() vmi.CPUState {
	c := w.Target.CPU()
	c.CR3 = w.cr3
	return c
}

// TestLocateRootSourcesDisagree: on a real guest, a CPU state whose CR3
// does not map the kernel is rejected, said in the notes, and the profile's
// init_top_pgt is used; when the profile's root is wrong too, Open fails
// with an error that names both roots and why each was refused.
func TestLocateRootSourcesDisagree(t *testing.T) {
	const variant = "x86_64-4level"
	var tr struct {
		Symbols map[string]string `json:"symbols"`
		Banner  string            `json:"banner"`
	}
	testimages.LoadTruth(t, variant, &tr)
	real, err := dump.Open(testimages.Path(t, variant, "mem.elf.zst"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	// Physical page 0x1000 is RAM, but not a page table.
	tg := wrongCR3{real, 0x1000}
	kallsyms := testimages.Path(t, variant, "kallsyms.zst")
	noCache := unpack.Options{CacheDir: t.TempDir()}

	t.Run("CPU state wrong", func(t *testing.T) {
		k, err := Open(tg, Options{SymbolsPath: kallsyms, Unpack: noCache})
		if err != nil {
			t.Fatal(err)
		}
		l := k.Layout
		if !strings.HasPrefix(l.RootSource, "init_top_pgt (kernel found at physical") {
			t.Errorf("root %#x from %q, want init_top_pgt", l.Root, l.RootSource)
		}
		if l.Banner != strings.TrimSpace(tr.Banner) {
			t.Errorf("banner %q", l.Banner)
		}
		notes := strings.Join(l.Notes, "\n")
		if !strings.Contains(notes, "rejected root 0x1000 from CPU state (CR3) (4-level paging): ") {
			t.Errorf("notes do not say the CPU's root was rejected:\n%s", notes)
		}
		t.Logf("root %#x from %s; notes:\n%s", l.Root, l.RootSource, notes)
	})

	t.Run("both wrong", func(t *testing.T) {
		// The guest's own kallsyms with init_top_pgt moved to the page of
		// linux_banner: text, not a table.
		path := moveRootSymbol(t, kallsyms)
		_, err = Open(tg, Options{SymbolsPath: path, Unpack: noCache})
		if err == nil {
			t.Fatal("Open succeeded with neither root mapping the kernel")
		}
		// The message is one short line; every rejected root is a detail.
		msg := err.Error()
		if !strings.Contains(msg, "none of 2 candidate page-table roots maps the kernel") || len(msg) > 160 {
			t.Errorf("message: %q", msg)
		}
		details := strings.Join(vmi.Details(err), "\n")
		for _, want := range []string{
			"root 0x1000 from CPU state (CR3) (4-level paging)",
			"from init_top_pgt (kernel found at physical",
		} {
			if !strings.Contains(details, want) {
				t.Errorf("details do not say %q:\n%s", want, details)
			}
		}
		t.Logf("%v\n%s", err, details)
	})
}

// TestLocateKernelRoot: on every real guest with CPU state, the root kept
// is the kernel's own (init_top_pgt, swapper_pg_dir on i386) at the
// physical address the guest's /proc/iomem and kallsyms give, not the
// vCPU's CR3 (in every capture a task's page tables, which the guest may
// free); the CPU's CR3 is named as the check.
func TestLocateKernelRoot(t *testing.T) {
	for _, d := range testimages.All {
		if d.File != "mem.elf.zst" {
			continue // raw images have no CPU state
		}
		t.Run(d.Variant, func(t *testing.T) {
			var tr struct {
				Symbols map[string]string `json:"symbols"`
				CPU     struct {
					CR3 string `json:"cr3"`
				} `json:"cpu"`
				KASLR struct {
					KernelPhys map[string]struct {
						Start string `json:"start"`
					} `json:"kernel_phys"`
				} `json:"kaslr"`
			}
			testimages.LoadTruth(t, d.Variant, &tr)
			rootSym := "init_top_pgt"
			if strings.HasPrefix(d.Variant, "i386") {
				rootSym = "swapper_pg_dir"
			}
			text := testimages.Hex(t, "_text", tr.Symbols["_text"])
			rootVA := testimages.Hex(t, rootSym, tr.Symbols[rootSym])
			textPA := testimages.Hex(t, "Kernel code", tr.KASLR.KernelPhys["Kernel code"].Start)
			cr3 := testimages.Hex(t, "cr3", tr.CPU.CR3)
			want := textPA + rootVA - text
			if cr3&^0xfff == want {
				t.Fatalf("the capture's CR3 %#x is %s itself: this guest cannot tell the roots apart", cr3, rootSym)
			}

			tg, err := dump.Open(testimages.Path(t, d.Variant, d.File), dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if got := tg.CPU().CR3; got != cr3 {
				t.Fatalf("dump CR3 %#x, truth.json %#x", got, cr3)
			}
			// Through Open: the i386 kallsyms are text symbols only, and
			// VMCOREINFO names swapper_pg_dir.
			k, err := Open(tg, Options{SymbolsPath: testimages.Path(t, d.Variant, "kallsyms.zst"),
				Unpack: unpack.Options{CacheDir: t.TempDir()}})
			if err != nil {
				t.Fatal(err)
			}
			l, space := k.Layout, k.Space
			if l.Root != want || space.Root() != want {
				t.Errorf("root %#x (space %#x) from %q, want %s at physical %#x", l.Root, space.Root(), l.RootSource, rootSym, want)
			}
			if src := fmt.Sprintf("%s (checked against the CPU's CR3 %#x)", rootSym, cr3); l.RootSource != src {
				t.Errorf("root source %q, want %q", l.RootSource, src)
			}
			if l.TextPhys != textPA {
				t.Errorf("_text at physical %#x, want %#x", l.TextPhys, textPA)
			}
			for _, n := range l.Notes {
				if strings.Contains(n, "CR3") {
					t.Errorf("note: %s", n)
				}
			}
		})
	}
}

// TestLocateKernelRootWrong: when the kernel's root symbol does not map
// the kernel (a profile from another build, say), the CPU's CR3 that did
// stays the root and a note says why and what that risks.
func TestLocateKernelRootWrong(t *testing.T) {
	const variant = "x86_64-4level"
	real, err := dump.Open(testimages.Path(t, variant, "mem.elf.zst"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	// init_top_pgt moved to the page of linux_banner: text, not a table.
	syms, err := symbols.Load(moveRootSymbol(t, testimages.Path(t, variant, "kallsyms.zst")), unpack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := Locate(real, syms)
	if err != nil {
		t.Fatal(err)
	}
	if cr3 := real.CPU().CR3; l.Root != cr3 || l.RootSource != "CPU state (CR3)" {
		t.Errorf("root %#x from %q, want the CPU's CR3 %#x", l.Root, l.RootSource, cr3)
	}
	notes := strings.Join(l.Notes, "\n")
	if !strings.Contains(notes, "kept as the root (a task's page tables, which a live guest may free): init_top_pgt at physical") {
		t.Errorf("notes do not say why the CPU's root was kept:\n%s", notes)
	}
	t.Logf("notes: %s", notes)
}

// moveRootSymbol writes a copy of a kallsyms file whose init_top_pgt is
// the page of linux_banner, and returns its path.
func moveRootSymbol(t *testing.T, kallsyms string) string {
	t.Helper()
	syms, err := symbols.Load(kallsyms, unpack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	banner, _ := syms.Lookup("linux_banner")
	root, ok := syms.Lookup("init_top_pgt")
	if !ok {
		t.Fatal("kallsyms has no init_top_pgt")
	}
	f, err := unpack.Open(kallsyms, unpack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), f.Data...)
	f.Close()
	line := regexp.MustCompile(fmt.Sprintf(`(?m)^%016x (\w) init_top_pgt$`, root))
	if !line.Match(raw) {
		t.Fatal("no init_top_pgt line in kallsyms")
	}
	bad := line.ReplaceAll(raw, fmt.Appendf(nil, "%016x $1 init_top_pgt", banner&^0xfff))
	path := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
