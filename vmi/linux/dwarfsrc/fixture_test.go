package dwarfsrc

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
)

// expectation is one line of testdata/expected.txt: what the C compiler
// says an offset or size is.
type expectation struct {
	typ, path string // path "" for sizeof
	want      uint64
}

func loadExpected(t testing.TB, arch string) []expectation {
	t.Helper()
	f, err := os.Open("testdata/expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []expectation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) < 4 || w[0] != arch {
			continue
		}
		n, err := strconv.ParseUint(w[len(w)-1], 10, 64)
		if err != nil {
			t.Fatalf("expected.txt: %q: %v", sc.Text(), err)
		}
		// Types are one or two words ("struct module", "module_t").
		rest := w[2 : len(w)-1]
		e := expectation{want: n}
		typeWords := 1
		if rest[0] == "struct" || rest[0] == "union" || rest[0] == "enum" {
			typeWords = 2
		}
		e.typ = strings.Join(rest[:typeWords], " ")
		if w[1] == "offsetof" {
			e.path = strings.Join(rest[typeWords:], "")
		}
		out = append(out, e)
	}
	if len(out) < 40 {
		t.Fatalf("expected.txt has %d lines for %s", len(out), arch)
	}
	return out
}

// checkFixture loads a fixture and compares every expectation for arch.
func checkFixture(t *testing.T, arch, path string) {
	t.Helper()
	ty, err := Load(path, unpack.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ty.Close()
	// Executables are read in place, one view per unit; object files
	// through debug/elf, which relocates.
	if inPlace := ty.info != nil; inPlace != strings.HasSuffix(path, ".elf") {
		t.Errorf("%s: read in place = %v", path, inPlace)
	}
	if want := map[string]int{"m32": 4, "m64": 8}[arch]; ty.PointerSize() != want {
		t.Errorf("%s: PointerSize = %d, want %d", path, ty.PointerSize(), want)
	}
	for _, e := range loadExpected(t, arch) {
		var got uint64
		var err error
		if e.path == "" {
			got, err = ty.Sizeof(e.typ)
		} else {
			got, err = ty.Offsetof(e.typ, e.path)
		}
		if err != nil || got != e.want {
			t.Errorf("%s: %s %q: got %d, %v; the compiler says %d", path, e.typ, e.path, got, err, e.want)
		}
	}
}

func fixtures() map[string]string {
	out := map[string]string{}
	for _, arch := range []string{"m32", "m64"} {
		for _, kind := range []string{"o", "elf"} {
			out[filepath.Join("testdata", "fixture"+arch[1:]+"."+kind)] = arch
		}
	}
	return out
}

func TestFixtures(t *testing.T) {
	for path, arch := range fixtures() {
		t.Run(filepath.Base(path), func(t *testing.T) { checkFixture(t, arch, path) })
	}
}
