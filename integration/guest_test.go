package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

const lkm = "../scripts/examples/lkm.lua"

// TestGuestModules: lkm.lua prints exactly the guest's /proc/modules, in
// order, for every paging mode and memory layout, from ELF and raw dumps.
func TestGuestModules(t *testing.T) {
	for _, v := range Variants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range imageDumps(t, v, img) {
				t.Run(d, func(t *testing.T) {
					target, k, err := openKernel(t, img, d)
					if err != nil {
						t.Fatal(err)
					}
					defer target.Close()
					out, err := RunScript(k, lkm)
					if err != nil {
						t.Fatalf("lkm.lua: %v", err)
					}
					got := moduleNames(t, out)
					want := img.Truth.Modules
					if strings.Join(got, ",") != strings.Join(want, ",") {
						t.Fatalf("lkm.lua printed %d modules:\n%v\nthe guest's /proc/modules had %d:\n%v", len(got), got, len(want), want)
					}
				})
			}
		})
	}
}

// imageDumps returns the dumps of img that the tests cover, and fails t
// when one is missing: mem.elf.zst always, and mem.raw.zst for every guest
// but highmem, whose RAM the PCI hole splits (build-guest.sh writes no raw
// image for it).
func imageDumps(t *testing.T, variant string, img *Image) []string {
	t.Helper()
	var out []string
	for _, d := range Dumps {
		if d == "mem.raw.zst" && variant == "x86_64-highmem" {
			continue
		}
		if !img.Exists(d) {
			t.Fatalf("%s: no %s", img.Dir, d)
		}
		out = append(out, d)
	}
	return out
}

// TestGuestLayout: the located kernel matches what the guest reported: paging
// mode, banner, for ELF cores the kernel's own root checked against the CPU's
// CR3, and the banner and _text symbols.
func TestGuestLayout(t *testing.T) {
	wantMode := map[string]string{"4-level": "4-level", "5-level": "5-level", "pae": "PAE", "32-bit": "legacy 32-bit"}
	for _, v := range Variants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range imageDumps(t, v, img) {
				t.Run(d, func(t *testing.T) {
					target, k, err := openKernel(t, img, d)
					if err != nil {
						t.Fatal(err)
					}
					defer target.Close()
					l := k.Layout
					if got, want := l.Mode.String(), wantMode[img.Truth.Paging]; got != want {
						t.Errorf("paging %s, guest ran %s", got, want)
					}
					if l.Banner != strings.TrimSpace(img.Truth.Banner) {
						t.Errorf("banner %q, guest printed %q", l.Banner, img.Truth.Banner)
					}
					if d == "mem.elf.zst" {
						cr3, err := Hex(img.Truth.CPU["cr3"])
						if err != nil {
							t.Fatal(err)
						}
						// The root is the kernel's own, found and checked
						// through the guest's CR3 (a task's page tables).
						sym := "init_top_pgt"
						if img.Truth.Arch == "i386" {
							sym = "swapper_pg_dir"
						}
						rootVA, err1 := Hex(img.Truth.Symbols[sym])
						textVA, err2 := Hex(img.Truth.Symbols["_text"])
						if err1 != nil || err2 != nil {
							t.Fatalf("truth.json: %s %v, _text %v", sym, err1, err2)
						}
						src := fmt.Sprintf("%s (checked against the CPU's CR3 %#x)", sym, cr3)
						if l.Root != l.TextPhys+rootVA-textVA || l.RootSource != src {
							t.Errorf("root %#x from %s, want %s at physical %#x, checked against the guest's CR3 %#x",
								l.Root, l.RootSource, sym, l.TextPhys+rootVA-textVA, cr3)
						}
					} else if target.CPU().Known {
						t.Errorf("raw image claims CPU state")
					}
					// The banner symbol reads as the banner the guest printed.
					banner, err := k.Symbol("linux_banner")
					if err != nil {
						t.Fatal(err)
					}
					if want, _ := Hex(img.Truth.Symbols["linux_banner"]); banner != want {
						t.Errorf("linux_banner at %#x, guest said %#x", banner, want)
					}
					if text, ok := img.Truth.Symbols["_text"]; ok {
						want, _ := Hex(text)
						got, err := k.Symbol("_text")
						if err != nil || got != want {
							t.Errorf("_text %#x (%v), guest said %#x", got, err, want)
						}
					}
				})
			}
		})
	}
}

// TestGuestTasks: ps.lua (scripts/lib/linux.lua's tasks()) lists exactly the
// tasks the guest listed from /proc, plus the idle task (pid 0), which /proc
// does not show.
func TestGuestTasks(t *testing.T) {
	for _, v := range Variants {
		t.Run(v, func(t *testing.T) {
			img, k := openCore(t, v)
			out, err := RunScript(k, "../scripts/examples/ps.lua")
			if err != nil {
				t.Fatalf("ps.lua: %v", err)
			}
			checkTasks(t, img, out)
		})
	}
}

// moduleNames returns the name field of lkm.lua's records in out.
func moduleNames(t *testing.T, out string) []string {
	t.Helper()
	names, err := RecordStrings(out, "name")
	if err != nil {
		t.Fatalf("lkm.lua: %v", err)
	}
	return names
}

// checkTasks compares ps.lua's output with the tasks the guest listed from
// /proc, plus the idle task (pid 0), which /proc does not show.
func checkTasks(t *testing.T, img *Image, out string) {
	t.Helper()
	want := map[int]string{0: "swapper/0"}
	for _, task := range img.Truth.Tasks {
		want[task.PID] = task.Comm
	}
	got := map[int]string{}
	recs, err := Records(out)
	if err != nil {
		t.Fatalf("ps.lua: %v", err)
	}
	for _, r := range recs {
		fpid, okPID := r["pid"].(float64)
		comm, okComm := r["comm"].(string)
		pid := int(fpid)
		if !okPID || !okComm || float64(pid) != fpid {
			t.Fatalf("ps.lua record %v: want a whole pid and a comm", r)
		}
		if _, dup := got[pid]; dup {
			t.Errorf("pid %d listed twice", pid)
		}
		got[pid] = comm
	}
	for pid, w := range want {
		if g, ok := got[pid]; !ok || !sameComm(g, w) {
			t.Errorf("pid %d: ps.lua says %q, the guest %q", pid, g, w)
		}
	}
	for pid, g := range got {
		if _, ok := want[pid]; !ok {
			t.Errorf("pid %d (%s) is not in the guest's list", pid, g)
		}
	}
}

// sameComm compares task_struct.comm with what /proc showed: /proc prints a
// kernel thread's full name where comm keeps 15 bytes, and a kworker's
// current workqueue after a dash ("kworker/0:1-events").
func sameComm(comm, proc string) bool {
	if comm == proc {
		return true
	}
	if len(comm) == 15 && strings.HasPrefix(proc, comm) {
		return true
	}
	return strings.HasPrefix(comm, "kworker/") && strings.HasPrefix(proc, comm+"-")
}

// TestGuestHighmemAbove4G: on the guest with RAM above the PCI hole, the
// module list really lives above 4 GiB, so the module test above exercises
// memory there (and not only the low 3 GiB).
func TestGuestHighmemAbove4G(t *testing.T) {
	img, err := LoadImage("x86_64-highmem")
	if err != nil {
		t.Fatal(err)
	}
	target, k, err := openKernel(t, img, "mem.elf.zst")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	high := false
	for _, r := range target.MemoryMap() {
		high = high || r.End > 1<<32
	}
	if !high {
		t.Fatalf("memory map %v has no range above 4 GiB", target.MemoryMap())
	}
	out, err := RunScript(k, "testdata/above4g.lua")
	if err != nil {
		t.Fatal(err)
	}
	var n, above int
	if _, err := fmt.Sscanf(out, "%d %d", &n, &above); err != nil {
		t.Fatalf("above4g.lua printed %q: %v", out, err)
	}
	if n != len(img.Truth.Modules) || above == 0 {
		t.Fatalf("%d modules walked (guest had %d), %d of them above 4 GiB", n, len(img.Truth.Modules), above)
	}
}

// TestGuestNoProfile: with no --symbols and no --btf, the profile comes
// from the kernel's own kallsyms tables and BTF in memory, and lkm.lua
// still prints the guest's /proc/modules. The i386 kernel has neither
// KALLSYMS_ALL nor BTF: it is located through VMCOREINFO, which names a few
// data symbols, and a data symbol it lacks (modules) is an error that says
// why and what to give instead.
func TestGuestNoProfile(t *testing.T) {
	for _, v := range Variants {
		t.Run(v, func(t *testing.T) {
			img, err := LoadImage(v)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range imageDumps(t, v, img) {
				// Cold: derive; warm: from the profile cache. (One cache per
				// dump: the guests of one kernel rightly share a profile.)
				cache := unpack.Options{CacheDir: t.TempDir()}
				for _, pass := range []string{"cold", "warm"} {
					t.Run(d+"/"+pass, func(t *testing.T) {
						target, err := dump.Open(img.Path(d), dumpOptions())
						if err != nil {
							t.Fatal(err)
						}
						defer target.Close()
						k, err := linux.Open(target, linux.Options{Unpack: cache})
						if err != nil {
							t.Fatal(err)
						}
						if fromCache := strings.HasPrefix(k.SymbolsFrom, "profile cache"); fromCache != (pass == "warm") {
							t.Errorf("%s run: symbols from %s", pass, k.SymbolsFrom)
						}
						if img.Truth.Arch == "i386" {
							checkI386NoProfile(t, img, k)
							return
						}
						if v, err := k.Validate(); err != nil {
							t.Errorf("validate: %v", err)
						} else if !strings.Contains(v, `comm "swapper/0"`) {
							t.Errorf("validate: %s", v)
						}
						out, err := RunScript(k, lkm)
						if err != nil {
							t.Fatal(err)
						}
						if got := moduleNames(t, out); strings.Join(got, ",") != strings.Join(img.Truth.Modules, ",") {
							t.Fatalf("lkm.lua printed %v, the guest listed %v", got, img.Truth.Modules)
						}
						ps, err := RunScript(k, "../scripts/examples/ps.lua")
						if err != nil {
							t.Fatal(err)
						}
						checkTasks(t, img, ps)
					})
				}
			}
		})
	}
}

// checkI386NoProfile: the text-only kernel located from memory alone has
// the guest's banner and the VMCOREINFO symbols, and says why it has no
// modules symbol.
func checkI386NoProfile(t *testing.T, img *Image, k *linux.Kernel) {
	t.Helper()
	if !k.TextSymbolsOnly() {
		t.Errorf("symbols from %s: not text symbols only", k.SymbolsFrom)
	}
	if got := k.Describe().Banner; got != img.Truth.Banner {
		t.Errorf("banner %q, the guest's is %q", got, img.Truth.Banner)
	}
	for _, name := range []string{"init_uts_ns", "swapper_pg_dir", "_stext"} {
		want, err := Hex(img.Truth.Symbols[name])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Symbol(name); err != nil || got != want {
			t.Errorf("symbol(%s) = %#x, %v; the guest's is %#x", name, got, err, want)
		}
	}
	_, err := k.Symbol("modules")
	if err == nil || !strings.Contains(err.Error(), "CONFIG_KALLSYMS_ALL") ||
		!strings.Contains(err.Error(), "VMCOREINFO") || !strings.Contains(err.Error(), "--symbols") {
		t.Errorf("symbol(modules): err = %v", err)
	}
}

// TestGuestI386ISF: the i386 kernel cannot describe itself (text-only
// kallsyms, no BTF), but a profile made once from System.map and BTF (here
// pahole's, from the -dbg package's DWARF) and exported as a Volatility ISF
// completes it: lkm.lua then needs only --isf.
func TestGuestI386ISF(t *testing.T) {
	img, err := LoadImage("i386-pae")
	if err != nil {
		t.Fatal(err)
	}
	target, k, err := openKernel(t, img, "mem.elf.zst")
	if err != nil {
		t.Fatal(err)
	}
	isfPath := filepath.Join(t.TempDir(), "i386.json")
	f, err := os.Create(isfPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.ExportISF(f, "0.1.0", linux.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	target.Close()

	raw, err := dump.Open(img.Path("mem.raw.zst"), dumpOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	k2, err := linux.Open(raw, linux.Options{ISFPath: isfPath, Unpack: cacheOpts(t)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := RunScript(k2, lkm)
	if err != nil {
		t.Fatal(err)
	}
	if got := moduleNames(t, out); strings.Join(got, ",") != strings.Join(img.Truth.Modules, ",") {
		t.Fatalf("lkm.lua with the ISF printed %v, the guest listed %v", got, img.Truth.Modules)
	}
}
