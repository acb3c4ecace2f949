package dump

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// Real QEMU captures made by the project's testdata scripts: mem.elf.zst is
// dump-guest-memory (paging=false), mem.raw.zst the raw physical memory of
// the same moment, truth.json what the guest and QEMU reported.
const realImagesDir = "../../testdata/images"

type realImage struct {
	dir     string
	hasRaw  bool // raw image of the same moment present
	highMem bool // RAM above 4 GiB
}

var realImages = []realImage{
	{dir: "x86_64-4level", hasRaw: true},
	{dir: "x86_64-highmem", highMem: true},
	{dir: "x86_64-5level", hasRaw: true},
	{dir: "i386-pae", hasRaw: true},
	{dir: "i386-legacy", hasRaw: true},
}

type truthFile struct {
	CPU struct {
		CR0, CR3, CR4, EFER string
	} `json:"cpu"`
	// RAM is the guest's "System RAM" from /proc/iomem, end inclusive.
	RAM []struct{ Start, End string } `json:"ram"`
}

func parseHex(t *testing.T, what, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
	if err != nil {
		t.Fatalf("truth.json: %s %q: %v", what, s, err)
	}
	return v
}

func openReal(t *testing.T, path string) vmi.Target {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("real image missing (the testdata scripts make it): %v", err)
	}
	tg, err := Open(path, realOptions())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func TestRealImages(t *testing.T) {
	for _, img := range realImages {
		t.Run(img.dir, func(t *testing.T) {
			dir := filepath.Join(realImagesDir, img.dir)
			tb, err := os.ReadFile(filepath.Join(dir, "truth.json"))
			if err != nil {
				t.Fatalf("truth.json missing: %v", err)
			}
			var truth truthFile
			if err := json.Unmarshal(tb, &truth); err != nil {
				t.Fatalf("truth.json: %v", err)
			}
			elf := openReal(t, filepath.Join(dir, "mem.elf.zst"))
			if !strings.HasPrefix(elf.Kind(), "ELF core") {
				t.Errorf("Kind = %q", elf.Kind())
			}
			checkRealCPU(t, elf.CPU(), truth)
			rs := elf.MemoryMap()
			t.Logf("%s: %s, memory map %v", img.dir, elf.Kind(), rs)
			if len(rs) == 0 || rs[0].Start != 0 {
				t.Fatalf("memory map %v does not start at 0", rs)
			}
			if len(truth.RAM) == 0 {
				t.Error("truth.json has no ram ranges")
			}
			for _, r := range truth.RAM {
				start, last := parseHex(t, "ram start", r.Start), parseHex(t, "ram end", r.End)
				if !covered(rs, start, last) {
					t.Errorf("guest System RAM [%#x-%#x] not in the memory map %v", start, last, rs)
				}
			}
			if above := rs[len(rs)-1].End > 1<<32; above != img.highMem {
				t.Errorf("memory map %v: RAM above 4 GiB = %v, want %v", rs, above, img.highMem)
			}
			if !img.hasRaw {
				return
			}
			raw := openReal(t, filepath.Join(dir, "mem.raw.zst"))
			if raw.Kind() != "raw image" || raw.CPU().Known {
				t.Errorf("raw: Kind %q, CPU %+v", raw.Kind(), raw.CPU())
			}
			rawEnd := raw.MemoryMap()[0].End
			// Every byte of the ELF's RAM that the raw image also has must
			// be equal, compared a page at a time, plus unaligned small
			// reads across page boundaries.
			var pages int
			a, b := make([]byte, 4096), make([]byte, 4096)
			for _, r := range rs {
				for pa := r.Start; pa < r.End && pa+4096 <= rawEnd; pa += 4096 {
					mustRead(t, elf, a, pa)
					mustRead(t, raw, b, pa)
					if !bytes.Equal(a, b) {
						t.Fatalf("page %#x differs between ELF and raw image", pa)
					}
					if pa+4096 < r.End {
						mustRead(t, elf, a[:8], pa+4092)
						mustRead(t, raw, b[:8], pa+4092)
						if !bytes.Equal(a[:8], b[:8]) {
							t.Fatalf("read at %#x across a page boundary differs", pa+4092)
						}
					}
					pages++
				}
			}
			if pages < 1000 {
				t.Fatalf("only %d pages compared", pages)
			}
			t.Logf("%d pages equal in ELF and raw image", pages)
			checkLiMEFromRaw(t, elf, raw, rawEnd)
		})
	}
}

// covered reports whether [start, last] lies in one range of rs.
func covered(rs []vmi.Range, start, last uint64) bool {
	for _, r := range rs {
		if r.Contains(start) && r.Contains(last) {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, tg vmi.PhysReader, buf []byte, pa uint64) {
	t.Helper()
	if err := tg.ReadPhys(buf, pa); err != nil {
		t.Fatal(err)
	}
}

func checkRealCPU(t *testing.T, cpu vmi.CPUState, truth truthFile) {
	t.Helper()
	if !cpu.Known {
		t.Fatal("CPU state unknown in a QEMU core")
	}
	for _, c := range []struct {
		name      string
		got       uint64
		truth     string
		mask      uint64
		maskNotes string
	}{
		{"CR0", cpu.CR0, truth.CPU.CR0, ^uint64(0), ""},
		{"CR3", cpu.CR3, truth.CPU.CR3, ^uint64(0), ""},
		{"CR4", cpu.CR4, truth.CPU.CR4, ^uint64(0), ""},
		// EFER is inferred (the QEMU note has none): only the bits that
		// matter to translation are compared.
		{"EFER", cpu.EFER, truth.CPU.EFER, vmi.EFERLME | vmi.EFERLMA | vmi.EFERNXE, " (LME|LMA|NXE)"},
	} {
		if c.truth == "" {
			t.Errorf("truth.json has no cpu.%s", strings.ToLower(c.name))
			continue
		}
		want := parseHex(t, c.name, c.truth)
		if c.got&c.mask != want&c.mask {
			t.Errorf("%s%s = %#x, truth %#x", c.name, c.maskNotes, c.got&c.mask, want&c.mask)
		}
	}
}

// checkLiMEFromRaw writes a LiME capture of the ELF's memory map from the
// raw image's bytes (what LiME would have captured) and checks it reads
// the same as the ELF.
func checkLiMEFromRaw(t *testing.T, elf, raw vmi.Target, rawEnd uint64) {
	var ranges []limeRange
	for _, r := range elf.MemoryMap() {
		end := min(r.End, rawEnd)
		if r.Start >= end {
			continue
		}
		b := make([]byte, end-r.Start)
		mustRead(t, raw, b, r.Start)
		ranges = append(ranges, limeRange{r.Start, b})
	}
	lime, err := Parse("converted.lime", buildLiME(ranges))
	if err != nil {
		t.Fatal(err)
	}
	if lime.Kind() != "LiME" {
		t.Errorf("Kind = %q", lime.Kind())
	}
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	for _, r := range lime.MemoryMap() {
		for pa := r.Start; pa < r.End; pa += 1 << 20 {
			n := min(r.End-pa, 1<<20)
			mustRead(t, lime, a[:n], pa)
			mustRead(t, elf, b[:n], pa)
			if !bytes.Equal(a[:n], b[:n]) {
				t.Fatalf("LiME and ELF differ in [%#x, %#x)", pa, pa+n)
			}
		}
	}
}
