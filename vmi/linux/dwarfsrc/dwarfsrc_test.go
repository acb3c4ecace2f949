package dwarfsrc

import (
	"bytes"
	"compress/gzip"
	"debug/dwarf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// TestErrors checks what goes wrong is named, and wraps the sentinels
// btfsrc uses.
func TestErrors(t *testing.T) {
	for path := range fixtures() {
		ty, err := Load(path, unpack.Options{NoCache: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			strct, path string
			want        error
			says        string
		}{
			{"module", "flags", vmi.ErrUnsupported, "3-bit bitfield"},
			{"module", "wide", vmi.ErrUnsupported, "bitfield"},
			{"module", "nope", vmi.ErrNotFound, "members: state, list, name"},
			{"module", "list.nope", vmi.ErrNotFound, `in path "list.nope"`},
			{"module", "name.x", vmi.ErrNotFound, "not a struct or union"},
			{"module", "layouts[4]", vmi.ErrNotFound, "out of range"},
			{"module", "state[1]", vmi.ErrNotFound, "not an array"},
			{"module", "name[x]", vmi.ErrNotFound, "bad index"},
			{"module", "", vmi.ErrNotFound, "empty"},
			{"no_such", "x", vmi.ErrNotFound, `no type "no_such"`},
			{"u64", "x", vmi.ErrNotFound, "not a struct or union"},
			{"union module", "list", vmi.ErrNotFound, `no type "union module"`},
		} {
			_, err := ty.Offsetof(c.strct, c.path)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%s: Offsetof(%s, %q) = %v; want %v saying %q", path, c.strct, c.path, err, c.want, c.says)
			}
		}
		if _, err := ty.Sizeof("struct nope"); !errors.Is(err, vmi.ErrNotFound) {
			t.Errorf("%s: Sizeof(struct nope) = %v", path, err)
		}
		// modref_t is a typedef of a declaration in fixture2.c's unit: the
		// complete struct is found in the other unit.
		if off, err := ty.Offsetof("modref_t", "list"); err != nil || off != ty.mustOff(t, "module", "list") {
			t.Errorf("%s: Offsetof(modref_t, list) = %d, %v", path, off, err)
		}
		ty.Close()
	}
}

func (t *Types) mustOff(tb testing.TB, s, m string) uint64 {
	off, err := t.Offsetof(s, m)
	if err != nil {
		tb.Fatal(err)
	}
	return off
}

// TestIndexPersisted: the second Load of a file maps the index the first
// wrote, and answers the same; a compressed file works too.
func TestIndexPersisted(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/fixture32.elf")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(src)
	zw.Close()
	path := filepath.Join(dir, "vmlinux.gz")
	if err := os.WriteFile(path, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := unpack.Options{CacheDir: filepath.Join(dir, "cache")}
	var answers []uint64
	for run := range 2 {
		ty, err := Load(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		off, err := ty.Offsetof("struct module", "core_layout.size")
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, off)
		if run == 1 && (ty.idxFile == nil || ty.idx.raw == nil) {
			t.Errorf("second Load did not use the persisted index")
		}
		ty.Close()
	}
	if answers[0] != answers[1] {
		t.Errorf("answers differ: %v", answers)
	}
	// A damaged index entry is ignored, not trusted.
	entries, _ := filepath.Glob(filepath.Join(dir, "cache", "*"+indexTag)) // not the .lock
	if len(entries) != 1 {
		t.Fatalf("index entries: %v", entries)
	}
	if err := os.WriteFile(entries[0], []byte("XDWFIX01garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	ty, err := Load(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer ty.Close()
	if off, err := ty.Offsetof("struct module", "core_layout.size"); err != nil || off != answers[0] {
		t.Errorf("with a damaged index: %d, %v", off, err)
	}
}

// TestNotDWARF: files without DWARF are refused with a reason.
func TestNotDWARF(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("hello, world"), 0o644)
	if _, err := Load(junk, unpack.Options{NoCache: true}); !errors.Is(err, vmi.ErrFormat) {
		t.Errorf("Load(junk) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing"), unpack.Options{NoCache: true}); err == nil {
		t.Errorf("Load(missing) succeeded")
	}
	// Rename .debug_info in a copy: a stripped vmlinux.
	data, _ := os.ReadFile("testdata/fixture64.elf")
	i := bytes.Index(data, []byte(".debug_info\x00"))
	if i < 0 {
		t.Fatal("no .debug_info name")
	}
	data[i+1] = 'X'
	stripped := filepath.Join(dir, "stripped")
	os.WriteFile(stripped, data, 0o644)
	if _, err := Load(stripped, unpack.Options{NoCache: true}); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "no .debug_info") {
		t.Errorf("Load(stripped) = %v", err)
	}
}

// TestCycles: type graphs that loop (hostile DWARF) end in vmi.ErrLimit or
// another error, never in an endless walk. The nodes are planted in the
// cache, as decoding would leave them.
func TestCycles(t *testing.T) {
	ty := &Types{ptrSize: 8, units: map[uint64]*unit{},
		nodes: map[uint64]*node{
			1: {tag: dwarf.TagTypedef, name: "loop_t", typ: ref{0, 1}, hasType: true},
			2: {tag: dwarf.TagStructType, name: "nest", hasSize: true, size: 8,
				members: []memberNode{{name: "", typ: ref{0, 2}}}},
			3: {tag: dwarf.TagArrayType, typ: ref{0, 3}, hasType: true, dims: []uint64{2}},
			4: {tag: dwarf.TagStructType, name: "decl", decl: true},
			5: {tag: dwarf.TagStructType, name: "holder", hasSize: true, size: 8,
				members: []memberNode{{name: "a", typ: ref{0, 3}}}},
		},
		idx: index{m: map[string]ref{"tloop_t": {0, 1}, "snest": {0, 2}, "tarr_t": {0, 3}, "sdecl": {0, 4}, "sholder": {0, 5}}},
	}
	ty.idx.once.Do(func() {})
	for _, c := range [][2]string{{"loop_t", ""}, {"arr_t", ""}, {"struct decl", ""}, {"nest", "x"}, {"holder", "a[1]"}} {
		var err error
		if c[1] == "" {
			_, err = ty.Sizeof(c[0])
		} else {
			_, err = ty.Offsetof(c[0], c[1])
		}
		if err == nil {
			t.Errorf("%s %s: no error", c[0], c[1])
		} else if !errors.Is(err, vmi.ErrLimit) {
			t.Logf("%s %s: %v", c[0], c[1], err)
		}
	}
}

// TestConcurrent: one Types answers from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	for path, arch := range fixtures() {
		ty, err := Load(path, unpack.Options{NoCache: true})
		if err != nil {
			t.Fatal(err)
		}
		exp := loadExpected(t, arch)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for _, e := range exp {
					if e.path != "" {
						if got, err := ty.Offsetof(e.typ, e.path); err != nil || got != e.want {
							t.Errorf("%s: Offsetof(%s, %s) = %d, %v", path, e.typ, e.path, got, err)
						}
					}
				}
			})
		}
		wg.Wait()
		ty.Close()
	}
}
