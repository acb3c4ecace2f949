package paging

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/xascript/xascript/vmi"
)

// imagesDir holds the QEMU guest captures made by testdata/build-guest.sh.
const imagesDir = "../../testdata/images"

// truth is the part of an image's truth.json this package checks against.
type truth struct {
	Paging   string            `json:"paging"`
	Banner   string            `json:"banner"`
	MemBytes uint64            `json:"mem_bytes"`
	CPU      map[string]string `json:"cpu"`
	Symbols  map[string]string `json:"symbols"`
}

// rawMem is a guest-physical image: file offset = guest-physical address.
type rawMem []byte

func (m rawMem) ReadPhys(buf []byte, pa uint64) error {
	if pa > uint64(len(m)) || uint64(len(buf)) > uint64(len(m))-pa {
		return &vmi.PhysError{Addr: pa, Err: vmi.ErrNotPresent}
	}
	copy(buf, m[pa:])
	return nil
}

func hexField(t *testing.T, what, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("truth.json %s = %q: %v", what, s, err)
	}
	return v
}

// TestRealImages translates linux_banner in real guests' memory. It fails,
// rather than skips, when an image is missing: the images are part of the
// test suite (make them with testdata/build-guest.sh VARIANT).
func TestRealImages(t *testing.T) {
	for _, tc := range []struct {
		variant string
		mode    Mode
	}{
		{"x86_64-4level", IA32e},
		{"x86_64-5level", LA57},
		{"i386-pae", PAE},
		{"i386-legacy", Legacy32},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			dir := filepath.Join(imagesDir, tc.variant)
			js, err := os.ReadFile(filepath.Join(dir, "truth.json"))
			if err != nil {
				t.Fatalf("image missing (run testdata/build-guest.sh %s): %v", tc.variant, err)
			}
			var tr truth
			if err := json.Unmarshal(js, &tr); err != nil {
				t.Fatalf("truth.json: %v", err)
			}
			zst, err := os.ReadFile(filepath.Join(dir, "mem.raw.zst"))
			if err != nil {
				t.Fatalf("image missing (run testdata/build-guest.sh %s): %v", tc.variant, err)
			}
			dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxWindow(1<<30), zstd.WithDecoderConcurrency(1))
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			raw, err := dec.DecodeAll(zst, make([]byte, 0, tr.MemBytes))
			if err != nil {
				t.Fatalf("mem.raw.zst: %v", err)
			}
			if tr.MemBytes != 0 && uint64(len(raw)) != tr.MemBytes {
				t.Errorf("mem.raw is %d bytes, truth.json says %d", len(raw), tr.MemBytes)
			}

			cpu := vmi.CPUState{Known: true}
			for name, p := range map[string]*uint64{"cr0": &cpu.CR0, "cr3": &cpu.CR3, "cr4": &cpu.CR4, "efer": &cpu.EFER} {
				if s, ok := tr.CPU[name]; ok {
					*p = hexField(t, "cpu."+name, s)
				}
			}
			mode, err := ModeFromCPU(cpu)
			if err != nil || mode != tc.mode {
				t.Fatalf("ModeFromCPU(%+v) = %v, %v; want %v (truth says %q)", cpu, mode, err, tc.mode, tr.Paging)
			}

			s := New(rawMem(raw), mode, cpu.CR3)
			va := hexField(t, "symbols.linux_banner", tr.Symbols["linux_banner"])
			if tr.Banner == "" {
				t.Fatal("truth.json has no banner")
			}
			buf := make([]byte, len(tr.Banner))
			if err := s.Read(buf, va); err != nil {
				w, _ := s.Walk(va)
				t.Fatalf("reading linux_banner: %v\n%v", err, w)
			}
			if !bytes.HasPrefix(buf, []byte("Linux version ")) {
				t.Fatalf("linux_banner at %#x reads %q", va, buf)
			}
			if string(buf) != tr.Banner {
				t.Errorf("linux_banner at %#x reads\n%q\nwant\n%q", va, buf, tr.Banner)
			}
			w, err := s.Walk(va)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("linux_banner: %v", w)

			// The same physical bytes through the kernel's direct map of all
			// RAM (other page sizes, other tables): on x86-64 its base is the
			// variable page_offset_base (randomised); on i386 lowmem starts at
			// PAGE_OFFSET = 0xc0000000 and holds the kernel image itself.
			if sym, ok := tr.Symbols["page_offset_base"]; ok {
				var p [8]byte
				if err := s.Read(p[:], hexField(t, "symbols.page_offset_base", sym)); err != nil {
					t.Fatalf("page_offset_base: %v", err)
				}
				base := binary.LittleEndian.Uint64(p[:])
				if pa, err := s.Translate(base + w.PA); err != nil || pa != w.PA {
					dw, _ := s.Walk(base + w.PA)
					t.Errorf("direct map %#x + %#x -> %#x, %v\n%v", base, w.PA, pa, err, dw)
				}
			} else if mode == PAE || mode == Legacy32 {
				if w.PA != va-0xc000_0000 {
					t.Errorf("linux_banner %#x at pa %#x, not in lowmem at PAGE_OFFSET 0xc0000000", va, w.PA)
				}
			}

			// Every kernel-image symbol the guest reported is mapped, and the
			// cache agrees with a fresh walk. Per-CPU symbols (offsets, such
			// as __per_cpu_start = 0) and _end (the first byte after the
			// image) are not addresses in the image.
			text := hexField(t, "symbols._text", tr.Symbols["_text"])
			for name, sv := range tr.Symbols {
				va := hexField(t, "symbols."+name, sv)
				if va < text || name == "_end" {
					continue
				}
				pa, err := s.Translate(va)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if w, err := s.Walk(va); err != nil || w.PA != pa {
					t.Errorf("%s: Translate %#x, Walk %+v %v", name, pa, w, err)
				}
			}
		})
	}
}
