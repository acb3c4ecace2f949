//go:build guests

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/linux/vmcoreinfo"
)

// kdumpTruth is testdata/kdump/build-kdump.sh's truth.json: the first
// kernel's view of itself (the Truth fields) plus what the kdump build adds.
type kdumpTruth struct {
	Truth
	VMCoreBytes int64 `json:"vmcore_bytes"`
	CrashKernel []struct {
		Start string `json:"start"`
		End   string `json:"end"` // inclusive, as /proc/iomem prints it
	} `json:"crash_kernel"`
	RAM []struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"ram"`
	KASLR struct {
		KernelPhys map[string]struct {
			Start string `json:"start"`
		} `json:"kernel_phys"` // /proc/iomem's Kernel code/rodata/data/bss
	} `json:"kaslr"`
}

// kdumpDefaultText is _text without KASLR (KERNELOFFSET is relative to it);
// startKernelMap is __START_KERNEL_map.
const (
	kdumpDefaultText = 0xffff_ffff_8100_0000
	startKernelMap   = 0xffff_ffff_8000_0000
)

// TestKdumpVmcore reads a real kdump /proc/vmcore: a Debian 6.1 cloud
// kernel, booted with crashkernel= under QEMU, panicked through sysrq after
// loading a capture kernel with kexec_file_load(2); the capture kernel
// copied /proc/vmcore out (testdata/kdump/build-kdump.sh, which makes
// XASCRIPT_KDUMP's directory). The dump has no control registers, so the
// kernel must be found from memory alone (init_top_pgt at the physical
// slide) with no profile files; lkm.lua must print the first kernel's
// /proc/modules and ps.lua its tasks.
func TestKdumpVmcore(t *testing.T) {
	dir := os.Getenv("XASCRIPT_KDUMP")
	if dir == "" {
		t.Fatal("XASCRIPT_KDUMP is not set: it names the output directory of testdata/kdump/build-kdump.sh (make test-kdump builds one)")
	}
	var tr kdumpTruth
	data, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &tr); err != nil {
		t.Fatalf("%s/truth.json: %v", dir, err)
	}
	if len(tr.Modules) < 10 {
		t.Fatalf("truth.json lists %d modules; the guest loads at least 10", len(tr.Modules))
	}
	vmcore := filepath.Join(dir, "vmcore.zst")
	if _, err := os.Stat(vmcore); err != nil {
		t.Fatal(err)
	}
	kallsyms, err := symbols.Load(filepath.Join(dir, "kallsyms.zst"), unpack.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer kallsyms.Close()
	sym := func(name string) uint64 {
		t.Helper()
		v, ok := kallsyms.Lookup(name)
		if !ok {
			t.Fatalf("%s is not in the guest's /proc/kallsyms", name)
		}
		return v
	}

	code, ok := tr.KASLR.KernelPhys["Kernel code"]
	if !ok {
		t.Fatal("truth.json has no kaslr.kernel_phys \"Kernel code\" (from /proc/iomem)")
	}
	textPhys := hexOf(t, code.Start) // _text's physical address, as the guest saw it

	cache := unpack.Options{CacheDir: t.TempDir()}
	target, err := dump.Open(vmcore, dump.Options{Options: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()

	t.Run("format", func(t *testing.T) {
		if got := target.Kind(); got != "ELF core (kdump)" {
			t.Errorf("kind %q, want %q", got, "ELF core (kdump)")
		}
		if target.CPU().Known {
			t.Errorf("a kdump vmcore has no control registers, but CPU() is %+v", target.CPU())
		}
		// The crash notes: one NT_PRSTATUS for the one vCPU, written by
		// the crashing CPU for the task that panicked (pid 1, the guest's
		// shell writing /proc/sysrq-trigger), RIP in kernel text.
		vcpus := target.(dump.VCPUProvider).VCPUs()
		if len(vcpus) != 1 || vcpus[0].Regs == nil {
			t.Fatalf("want one vCPU with NT_PRSTATUS registers, got %+v", vcpus)
		}
		if rip := vcpus[0].Regs.RIP; vcpus[0].ID != 1 || rip < sym("_stext") || rip >= sym("_etext") {
			t.Errorf("NT_PRSTATUS pid %d, RIP %#x: want pid 1 and RIP in kernel text [%#x, %#x)", vcpus[0].ID, rip, sym("_stext"), sym("_etext"))
		}
		// The memory map: the first kernel's RAM above 1 MiB, without the
		// crashkernel= region (the capture kernel's own memory).
		mm := target.MemoryMap()
		t.Logf("memory map %v", mm)
		var crash []vmi.Range
		for _, c := range tr.CrashKernel {
			crash = append(crash, vmi.Range{Start: hexOf(t, c.Start), End: hexOf(t, c.End) + 1})
		}
		if len(crash) == 0 {
			t.Fatal("truth.json has no crash_kernel range")
		}
		for _, c := range crash {
			for _, r := range mm {
				if r.Start < c.End && c.Start < r.End {
					t.Errorf("memory map range %#x-%#x overlaps the crashkernel region %#x-%#x", r.Start, r.End, c.Start, c.End)
				}
			}
		}
		for _, ram := range tr.RAM {
			r := vmi.Range{Start: max(hexOf(t, ram.Start), 1<<20), End: hexOf(t, ram.End) + 1}
			for _, want := range subtract(r, crash) {
				if !covered(mm, want) {
					t.Errorf("System RAM %#x-%#x is not in the vmcore", want.Start, want.End)
				}
			}
		}
		if n := decompressedSize(t, vmcore, cache); n != tr.VMCoreBytes {
			t.Errorf("decompressed vmcore is %d bytes, /proc/vmcore was %d", n, tr.VMCoreBytes)
		}
	})

	// The VMCOREINFO note of the dump: what the kernel wrote as it crashed.
	var note *vmcoreinfo.Info
	t.Run("vmcoreinfo note", func(t *testing.T) {
		text, ok := target.(dump.VMCoreInfoProvider).VMCoreInfo()
		if !ok {
			t.Fatal("no VMCOREINFO note")
		}
		in, err := vmcoreinfo.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		note = in
		if in.OSRelease != tr.KernelRelease || in.PageSize != 4096 || in.Malformed != 0 {
			t.Errorf("OSRELEASE %q, PAGESIZE %d, %d malformed lines %v; the guest runs %s", in.OSRelease, in.PageSize, in.Malformed, in.Skipped, tr.KernelRelease)
		}
		// The crashing kernel appends CRASHTIME to its VMCOREINFO.
		if _, ok := in.Other["CRASHTIME"]; !ok {
			t.Errorf("no CRASHTIME in the note: %v", in.Order)
		}
		if !in.HasKernelOffset || in.KernelOffset != sym("_text")-kdumpDefaultText {
			t.Errorf("KERNELOFFSET %#x (present %v), the guest's _text %#x is %#x from the default", in.KernelOffset, in.HasKernelOffset, sym("_text"), sym("_text")-kdumpDefaultText)
		}
		compared := 0
		for name, got := range in.Symbols {
			want, ok := kallsyms.Lookup(name)
			if !ok || name == "mem_section" || name == "vmemmap" { // those hold a pointer's value
				continue
			}
			compared++
			if got != want {
				t.Errorf("SYMBOL(%s) = %#x, kallsyms %#x", name, got, want)
			}
		}
		// The kallsyms_* tables are never in /proc/kallsyms.
		if compared < 6 {
			t.Errorf("only %d SYMBOL()s compared with kallsyms", compared)
		}
		// phys_base: what __pa() subtracts for kernel-image addresses.
		if pb, ok := in.Numbers["phys_base"]; !ok || uint64(pb) != textPhys-(sym("_text")-startKernelMap) {
			t.Errorf("NUMBER(phys_base) %#x, want _text's physical %#x - (%#x - __START_KERNEL_map)", pb, textPhys, sym("_text"))
		}
	})

	k, err := linux.Open(target, linux.Options{Unpack: cache})
	if err != nil {
		t.Fatalf("linux.Open with no profile files: %v", err)
	}
	t.Run("layout", func(t *testing.T) {
		l := k.Layout
		t.Logf("root %#x from %s, _text at physical %#x, KASLR virtual %#x physical %#x; symbols from %s; types from %s",
			l.Root, l.RootSource, l.TextPhys, l.KASLRVirtual, l.KASLRPhysical, k.SymbolsFrom, k.TypesFrom)
		if strings.Contains(l.RootSource, "CPU") || !strings.Contains(l.RootSource, "init_top_pgt") {
			t.Errorf("root from %q: want init_top_pgt, there is no CPU state", l.RootSource)
		}
		if got, want := l.Mode.String(), "4-level"; got != want {
			t.Errorf("paging %s, want %s", got, want)
		}
		if l.Banner != tr.Banner {
			t.Errorf("banner %q, the guest printed %q", l.Banner, tr.Banner)
		}
		// _text's physical address from the guest's iomem ("Kernel code")
		// and the root from init_top_pgt's offset in the image.
		if l.TextPhys != textPhys {
			t.Errorf("_text at physical %#x, the guest's /proc/iomem says %#x", l.TextPhys, textPhys)
		}
		if want := textPhys + sym("init_top_pgt") - sym("_text"); l.Root != want {
			t.Errorf("root %#x, want init_top_pgt's physical address %#x", l.Root, want)
		}
		if want := int64(sym("_text") - kdumpDefaultText); l.KASLRVirtual != want {
			t.Errorf("KASLR virtual %#x, the guest's _text says %#x", l.KASLRVirtual, want)
		}
		for _, name := range []string{"_text", "_stext", "_etext", "linux_banner", "init_task", "init_top_pgt",
			"modules", "init_uts_ns", "vmcoreinfo_data", "page_offset_base", "startup_64", "panic", "sysrq_handle_crash"} {
			if got, err := k.Symbol(name); err != nil || got != sym(name) {
				t.Errorf("symbol(%s) = %#x, %v; the guest's kallsyms %#x", name, got, err, sym(name))
			}
		}
		if v, err := k.Validate(); err != nil {
			t.Errorf("validate: %v", err)
		} else if !strings.Contains(v, `comm "swapper/0"`) {
			t.Errorf("validate: %s", v)
		}
	})

	// The kernel's VMCOREINFO (build id, `xascript info`, symbols a
	// text-only table lacks) must be the crashed kernel's: at the panic,
	// vmcoreinfo_data was pointed at a safe copy inside the crashkernel=
	// region (crash_save_vmcoreinfo), which /proc/vmcore leaves out, so
	// the pointer leads nowhere; the dump's note has the text.
	t.Run("kernel vmcoreinfo", func(t *testing.T) {
		f, err := k.Vmcoreinfo()
		if err != nil {
			t.Fatalf("Kernel.Vmcoreinfo: %v", err)
		}
		t.Logf("VMCOREINFO %s", f.How)
		if note == nil {
			t.Fatal("the dump's note did not parse")
		}
		if f.Info.OSRelease != note.OSRelease || f.Info.BuildID != note.BuildID || f.Info.Other["CRASHTIME"] != note.Other["CRASHTIME"] {
			t.Errorf("VMCOREINFO %s: release %q, build id %q, CRASHTIME %q; the note's: %q, %q, %q", f.How,
				f.Info.OSRelease, f.Info.BuildID, f.Info.Other["CRASHTIME"], note.OSRelease, note.BuildID, note.Other["CRASHTIME"])
		}
	})

	t.Run("lkm.lua", func(t *testing.T) {
		out, err := RunScript(k, lkm)
		if err != nil {
			t.Fatalf("lkm.lua: %v", err)
		}
		if got := moduleNames(t, out); strings.Join(got, ",") != strings.Join(tr.Modules, ",") {
			t.Fatalf("lkm.lua printed %d modules:\n%v\nthe guest's /proc/modules had %d:\n%v", len(got), got, len(tr.Modules), tr.Modules)
		}
	})

	t.Run("ps.lua", func(t *testing.T) {
		out, err := RunScript(k, "../scripts/examples/ps.lua")
		if err != nil {
			t.Fatalf("ps.lua: %v", err)
		}
		checkTasks(t, &Image{Dir: dir, Truth: tr.Truth}, out)
	})

	t.Run("binary", func(t *testing.T) {
		bin := os.Getenv("XASCRIPT_BIN")
		if bin == "" {
			t.Fatal("XASCRIPT_BIN is not set (make test-kdump sets it to bin/xascript)")
		}
		cacheDir := t.TempDir()
		got := moduleNames(t, runBinary(t, bin, lkm, "--file", vmcore, "--cache-dir", cacheDir, "--quiet", "--json"))
		if strings.Join(got, ",") != strings.Join(tr.Modules, ",") {
			t.Fatalf("xascript lkm.lua --file %s printed %v; the guest's /proc/modules had %v", vmcore, got, tr.Modules)
		}
		info := runBinary(t, bin, "info", "--file", vmcore, "--cache-dir", cacheDir, "--quiet")
		if !strings.Contains(info, "ELF core (kdump)") || !strings.Contains(info, "init_top_pgt") || !strings.Contains(info, tr.KernelRelease+", build id ") {
			t.Errorf("xascript info does not say ELF core (kdump), init_top_pgt and the VMCOREINFO's release and build id:\n%s", info)
		}
	})
}

func hexOf(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := Hex(s)
	if err != nil {
		t.Fatalf("truth.json: %q: %v", s, err)
	}
	return v
}

// subtract returns r without the holes (which are sorted and disjoint).
func subtract(r vmi.Range, holes []vmi.Range) []vmi.Range {
	out := []vmi.Range{r}
	for _, h := range holes {
		var next []vmi.Range
		for _, x := range out {
			if h.End <= x.Start || x.End <= h.Start {
				next = append(next, x)
				continue
			}
			if x.Start < h.Start {
				next = append(next, vmi.Range{Start: x.Start, End: h.Start})
			}
			if h.End < x.End {
				next = append(next, vmi.Range{Start: h.End, End: x.End})
			}
		}
		out = next
	}
	return out
}

// covered reports whether one range of the (merged) memory map holds all of r.
func covered(mm []vmi.Range, r vmi.Range) bool {
	for _, m := range mm {
		if m.Start <= r.Start && r.End <= m.End {
			return true
		}
	}
	return false
}

// decompressedSize is the length of path's uncompressed content.
func decompressedSize(t *testing.T, path string, cache unpack.Options) int64 {
	t.Helper()
	f, err := unpack.Open(path, cache)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return int64(len(f.Data))
}
