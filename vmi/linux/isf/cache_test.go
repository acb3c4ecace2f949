package isf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/internal/unpack/unpacktest"
)

// TestOpenCachedMatchesLoad: the real ISF, plain and xz-compressed, opened
// cold (indexing) and warm (from the index) answers every symbol and the
// layouts of the largest structs as Parse does; the cache holds the
// entries it should, owner-only.
func TestOpenCachedMatchesLoad(t *testing.T) {
	_, _, _, doc := realISF(t)
	want, err := Parse(doc, "real.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	for _, kind := range []string{"", "xz"} {
		data := doc
		if kind != "" {
			data = unpacktest.Compress(t, kind, doc)
		}
		path := filepath.Join(dir, "kernel.json"+kind)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, run := range []string{"cold", "warm"} {
			p, syms, err := Open(path, "ISF "+path, unpack.Options{CacheDir: cache})
			if err != nil {
				t.Fatalf("%s %s: %v", kind, run, err)
			}
			if p.ix == nil {
				t.Errorf("%s %s: the profile does not come from the index", kind, run)
			}
			n := 0
			for name, addr := range want.symbolMap() {
				if a, ok := syms.Lookup(name); !ok || a != addr {
					if n++; n < 5 {
						t.Errorf("%s %s: symbol %s = %#x, %v; want %#x", kind, run, name, a, ok, addr)
					}
				}
				if a, ok := p.Lookup(name); !ok || a != addr {
					t.Fatalf("%s %s: profile symbol %s = %#x, %v; want %#x", kind, run, name, a, ok, addr)
				}
			}
			if syms.Len() != len(want.symbolMap()) {
				t.Errorf("%s %s: %d symbols, want %d", kind, run, syms.Len(), len(want.symbolMap()))
			}
			if p.Banner() != want.Banner() || p.PointerSize() != want.PointerSize() || p.Format() != want.Format() {
				t.Errorf("%s %s: metadata differs", kind, run)
			}
			for _, c := range []struct{ s, m string }{{"task_struct", "comm"}, {"module", "list.next"}, {"mm_struct", "pgd"}, {"list_head", "prev"}} {
				w, werr := want.Offsetof(c.s, c.m)
				g, gerr := p.Offsetof(c.s, c.m)
				if g != w || (gerr == nil) != (werr == nil) {
					t.Errorf("%s %s: Offsetof(%s, %s) = %d, %v; want %d, %v", kind, run, c.s, c.m, g, gerr, w, werr)
				}
			}
			for _, ty := range []string{"struct task_struct", "enum pid_type", "struct no_such_type"} {
				w, werr := want.Sizeof(ty)
				g, gerr := p.Sizeof(ty)
				if g != w || (gerr == nil) != (werr == nil) {
					t.Errorf("%s %s: Sizeof(%s) = %d, %v; want %d, %v", kind, run, ty, g, gerr, w, werr)
				}
			}
			if err := p.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("cache entry %s has mode %v: other users can read it", e.Name(), fi.Mode())
		}
	}
	// plain: index + symbols (+ the symbols' hash index); xz: also the JSON.
	if len(entries) < 7 {
		t.Errorf("cache holds %d entries, want the index, symbols and symbol index of each and the decompressed JSON", len(entries))
	}
}

// TestOpenDamagedIndex: a cache entry cut short or overwritten is not
// trusted: Open drops it, indexes the document again and answers the same.
func TestOpenDamagedIndex(t *testing.T) {
	doc := synthISF(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	path := filepath.Join(dir, "k.json")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, err := Open(path, "k", unpack.Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	matches, _ := filepath.Glob(filepath.Join(cache, "*"+indexTag))
	if len(matches) != 1 {
		t.Fatalf("index entries: %v", matches)
	}
	orig, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, damaged := range map[string][]byte{
		"truncated": orig[:len(orig)/2],
		"garbage":   bytes.Repeat([]byte{0xff}, len(orig)),
		"flipped":   append(append([]byte{}, orig[:len(indexMagic)+8]...), bytes.Repeat([]byte{0x7f}, len(orig)-len(indexMagic)-8)...),
	} {
		if err := os.WriteFile(matches[0], damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		p, _, err := Open(path, "k", unpack.Options{CacheDir: cache})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.ix == nil {
			t.Errorf("%s: the damaged index was not made again", name)
		}
		if again, err := os.ReadFile(matches[0]); err != nil || !bytes.Equal(again, orig) {
			t.Errorf("%s: the index entry was not rebuilt (%v)", name, err)
		}
		if off, err := p.Offsetof("module", "hi"); err != nil || off != 100 {
			t.Errorf("%s: Offsetof(module, hi) = %d, %v", name, off, err)
		}
		p.Close()
	}
}

// FuzzReadIndex: an index is a cache file, read like any input.
func FuzzReadIndex(f *testing.F) {
	doc := synthISF(f)
	p, err := Parse(doc, "seed")
	if err != nil {
		f.Fatal(err)
	}
	var ix bytes.Buffer
	if err := writeIndex(&ix, p, doc); err != nil {
		f.Fatal(err)
	}
	f.Add(ix.Bytes())
	f.Fuzz(func(t *testing.T, ix []byte) {
		p, err := readIndex(ix, doc, "fuzz")
		if err != nil {
			return
		}
		p.Offsetof("module", "hi")
		p.Sizeof("struct module")
		p.Lookup("init_task")
		p.Symbols()
	})
}
