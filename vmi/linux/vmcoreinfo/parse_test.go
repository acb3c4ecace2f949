package vmcoreinfo

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// The fixtures are the VMCOREINFO of two committed guests
// (testdata/images/{i386-pae,x86_64-6.12}), as the kernel wrote it.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixtures(t *testing.T) {
	for _, c := range []struct {
		name, release, buildID string
		syms                   int
		stext                  uint64
	}{
		{"i386-pae", "6.1.0-50-686-pae", "624a8b769bdfaa206b2026637863dde5ad75d430", 16, 0xce000000},
		{"x86_64-6.12", "6.12.117+deb12-cloud-amd64", "7f76f39faf07f34cfa9fadd801e131bfa8cb6dc3", 17, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := fixture(t, c.name)
			// The kernel's page: the text, then zeros.
			in, err := Parse(append(raw, make([]byte, 4096-len(raw))...))
			if err != nil {
				t.Fatal(err)
			}
			if in.OSRelease != c.release || in.BuildID != c.buildID || in.PageSize != 4096 {
				t.Errorf("release %q, build id %q, page size %d", in.OSRelease, in.BuildID, in.PageSize)
			}
			if len(in.Symbols) != c.syms || in.Malformed != 0 || in.Bytes != len(raw) {
				t.Errorf("%d symbols, %d malformed (%v), %d bytes", len(in.Symbols), in.Malformed, in.Skipped, in.Bytes)
			}
			if c.stext != 0 {
				if v, ok := in.Symbol("_stext"); !ok || v != c.stext {
					t.Errorf("_stext = %#x, %v", v, ok)
				}
			}
			if off, ok := in.Offset("list_head", "next"); !ok || off != 0 {
				t.Errorf("OFFSET(list_head.next) = %d, %v", off, ok)
			}
			if v := in.Numbers["PAGE_BUDDY_MAPCOUNT_VALUE"]; v >= 0 {
				t.Errorf("NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) = %d", v)
			}
			if in.Order[0] != "OSRELEASE" || len(in.Order) != strings.Count(string(raw), "\n") {
				t.Errorf("order: %d keys for %d lines, first %q", len(in.Order), strings.Count(string(raw), "\n"), in.Order[0])
			}
		})
	}
	in, err := Parse(fixture(t, "i386-pae"))
	if err != nil {
		t.Fatal(err)
	}
	if !in.Configs["X86_PAE"] || in.HasKernelOffset {
		t.Errorf("i386: CONFIG_X86_PAE %v, KERNELOFFSET %v", in.Configs["X86_PAE"], in.HasKernelOffset)
	}
	in, err = Parse(fixture(t, "x86_64-6.12"))
	if err != nil {
		t.Fatal(err)
	}
	if !in.HasKernelOffset || in.KernelOffset == 0 {
		t.Errorf("x86_64: KERNELOFFSET %#x, %v", in.KernelOffset, in.HasKernelOffset)
	}
	// 6.12 writes NUMBER(VMALLOC_START) in hex, unlike other NUMBERs.
	if v := uint64(in.Numbers["VMALLOC_START"]); v != 0xffffd4aa40000000 {
		t.Errorf("NUMBER(VMALLOC_START) = %#x", v)
	}
}

func TestParseMalformed(t *testing.T) {
	const head = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff81000000\n"
	in, err := Parse([]byte(head +
		"garbage without equals\n" +
		"SYMBOL(bad name)=1\n" +
		"SYMBOL(x)=nothex\n" +
		"SYMBOL(_stext)=ffffffff82000000\n" + // duplicate: the first stays
		"SIZE(page)=-1\n" +
		"NUMBER(neg)=-5\n" +
		"NUMBER(VMALLOC_START)=0xffffc90000000000\n" +
		"CONFIG_FOO=n\n" +
		"BUILD-ID=xyz\n" +
		"KERNELOFFSET=1000000\n" +
		"WEIRD(x)=1\n" +
		"bin\x01ary=1\n" +
		strings.Repeat("A", MaxLineLen+1) + "=1\n" +
		"CRASHTIME=1700000000\n" +
		"OFFSET(zone.free_area)=256\n" +
		"SYMBOL(cut)=ffff"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := in.Symbol("_stext"); v != 0xffffffff81000000 {
		t.Errorf("duplicate _stext replaced the first: %#x", v)
	}
	if _, ok := in.Symbol("cut"); ok {
		t.Error("an unterminated last line was taken")
	}
	if in.Numbers["neg"] != -5 || uint64(in.Numbers["VMALLOC_START"]) != 0xffffc90000000000 {
		t.Errorf("numbers: %v", in.Numbers)
	}
	if !in.HasKernelOffset || in.KernelOffset != 0x1000000 || in.Other["CRASHTIME"] != "1700000000" {
		t.Errorf("KERNELOFFSET %#x %v, other %v", in.KernelOffset, in.HasKernelOffset, in.Other)
	}
	if v, ok := in.Offset("zone", "free_area"); !ok || v != 256 {
		t.Errorf("OFFSET(zone.free_area) = %d, %v", v, ok)
	}
	if in.BuildID != "" {
		t.Errorf("bad build id taken: %q", in.BuildID)
	}
	const bad = 11 // every line above but the five good ones
	if in.Malformed != bad || len(in.Skipped) != maxReported {
		t.Errorf("%d malformed, %d quoted: %q", in.Malformed, len(in.Skipped), in.Skipped)
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		text string
		want error
	}{
		{"empty", "", vmi.ErrFormat},
		{"not first", "PAGESIZE=4096\nOSRELEASE=6.1\n", vmi.ErrFormat},
		{"no page size", "OSRELEASE=6.1\nSYMBOL(_stext)=1\n", vmi.ErrFormat},
		{"odd page size", "OSRELEASE=6.1\nPAGESIZE=4095\nSYMBOL(_stext)=1\n", vmi.ErrFormat},
		{"no symbol", "OSRELEASE=6.1\nPAGESIZE=4096\n", vmi.ErrFormat},
		{"empty release", "OSRELEASE=\nPAGESIZE=4096\nSYMBOL(_stext)=1\n", vmi.ErrFormat},
		{"too big", "OSRELEASE=6.1\n" + strings.Repeat("#", MaxSize), vmi.ErrLimit},
		{"too many lines", "OSRELEASE=6.1\nPAGESIZE=4096\nSYMBOL(_stext)=1\n" + strings.Repeat("\n", MaxLines), vmi.ErrLimit},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}
