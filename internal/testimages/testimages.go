// Package testimages finds the committed real guest images for tests
// (testdata/images/<variant>/, made by testdata/build-guest.sh): their
// files, their truth.json and the dumps each has. It imports nothing of
// the project, so any package's tests can use it.
package testimages

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Dump is one capture of one guest.
type Dump struct{ Variant, File string }

func (d Dump) String() string { return d.Variant + "/" + d.File }

// All is every committed capture: ELF cores of every guest, and raw images
// where RAM is contiguous (not the 4.5 GiB highmem guest).
var All = []Dump{
	{"x86_64-4level", "mem.elf.zst"}, {"x86_64-4level", "mem.raw.zst"},
	{"x86_64-5level", "mem.elf.zst"}, {"x86_64-5level", "mem.raw.zst"},
	{"x86_64-highmem", "mem.elf.zst"},
	{"x86_64-6.12", "mem.elf.zst"}, {"x86_64-6.12", "mem.raw.zst"},
	{"i386-pae", "mem.elf.zst"}, {"i386-pae", "mem.raw.zst"},
	{"i386-legacy", "mem.elf.zst"}, {"i386-legacy", "mem.raw.zst"},
}

// X86_64 is All without the i386 guests.
func X86_64() []Dump {
	var out []Dump
	for _, d := range All {
		if !strings.HasPrefix(d.Variant, "i386") {
			out = append(out, d)
		}
	}
	return out
}

// Root is the images folder: $XASCRIPT_IMAGES, else testdata/images of the
// module the test runs in (found from the working directory, which go test
// sets to the package's folder).
func Root(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("XASCRIPT_IMAGES"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "images")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testimages: no go.mod above the test's folder")
		}
		dir = parent
	}
}

// Path is a file of a guest's image folder; the test fails when it is
// missing, saying how to make it.
func Path(tb testing.TB, variant, file string) string {
	tb.Helper()
	p := filepath.Join(Root(tb), variant, file)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("real image missing (testdata/build-guest.sh %s makes it): %v", variant, err)
	}
	return p
}

// LoadTruth decodes a guest's truth.json into v (each test declares the
// fields it reads).
func LoadTruth(tb testing.TB, variant string, v any) {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, variant, "truth.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s/truth.json: %v", variant, err)
	}
}

// Hex parses a truth.json address ("0xffffffff81000000").
func Hex(tb testing.TB, what, s string) uint64 {
	tb.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		tb.Fatalf("truth.json %s %q: %v", what, s, err)
	}
	return v
}
