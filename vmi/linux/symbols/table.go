package symbols

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// indexTag names the cached hash index; bump it when the layout changes.
const indexTag = "symbols-index-v1"

// checkLines is how many leading lines Load and Parse insist are well formed.
// Later malformed lines are skipped (and counted), not fatal: a symbol file
// that starts right is a symbol file, and one bad line should not hide the
// other 200k.
const checkLines = 16

// Table is a symbol table backed by the file's bytes. It is safe for
// concurrent use.
type Table struct {
	data []byte
	name string
	file *unpack.File // backs data when loaded from a file

	// For caching the index on disk; path is "" for Parse.
	path string
	opt  unpack.Options

	idxOnce sync.Once
	idx     *index
	idxFile *unpack.File
	idxErr  error

	mu    sync.Mutex
	cache map[string]result

	sortOnce sync.Once
	sorted   []sortEntry
}

type result struct {
	addr uint64
	ok   bool
}

// Load reads the System.map or kallsyms file at path (compressed or not).
func Load(path string, opt unpack.Options) (*Table, error) {
	f, err := unpack.Open(path, opt)
	if err != nil {
		return nil, fmt.Errorf("symbols: %w", err)
	}
	t, err := Parse(f.Data, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	t.file, t.path, t.opt = f, path, opt
	return t, nil
}

// LoadAs is Load with name, not path, in messages (for a table kept in a
// cache file on behalf of another source).
func LoadAs(path, name string, opt unpack.Options) (*Table, error) {
	t, err := Load(path, opt)
	if err != nil {
		return nil, err
	}
	t.name = name
	return t, nil
}

// Parse checks that data looks like a symbol table and returns it; name is
// used in messages. data must stay unchanged while the Table is used.
func Parse(data []byte, name string) (*Table, error) {
	t := &Table{data: data, name: name, cache: map[string]result{}}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

// check validates the first lines and refuses a kallsyms whose addresses
// were hidden.
func (t *Table) check() error {
	n, lineNo := 0, 0
	for off := 0; off < len(t.data) && n < checkLines; {
		b, next := lineAt(t.data, off)
		off = next
		lineNo++
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if _, ok := parseLine(b); !ok {
			return fmt.Errorf("symbols file %s line %d: not a System.map/kallsyms line: %q: %w",
				t.name, lineNo, truncate(b, 80), vmi.ErrFormat)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("symbols file %s: no symbols: %w", t.name, vmi.ErrFormat)
	}
	// kptr_restrict (or reading as non-root) zeroes every address. The first
	// lines may legitimately be 0 (per-CPU symbols are offsets from 0), so
	// scan to the first non-zero address; a real table has one within a
	// few lines, a hidden one costs a single pass.
	for off := 0; off < len(t.data); {
		b, next := lineAt(t.data, off)
		off = next
		if l, ok := parseLine(b); ok && l.addr != 0 {
			return nil
		}
	}
	return fmt.Errorf("symbols file %s: all addresses are zero: captured without root or with kptr_restrict: %w",
		t.name, vmi.ErrFormat)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// Close releases the mappings behind the table.
func (t *Table) Close() error {
	// unpack.File.Close is nil-safe: either may be absent.
	err := errors.Join(t.idxFile.Close(), t.file.Close())
	t.idxFile, t.file = nil, nil
	return err
}

// Name is the file name (or the name given to Parse).
func (t *Table) Name() string { return t.name }

// index returns the hash index: the cached one when the table came from a
// file, else one built now.
func (t *Table) index() (*index, error) {
	t.idxOnce.Do(func() {
		if t.path != "" && !t.opt.NoCache {
			f, err := unpack.Derived(t.path, indexTag, t.opt, func(w io.Writer) error {
				return buildIndex(t.data, w)
			})
			if err == nil {
				if x, err := openIndex(f.Data, len(t.data)); err == nil {
					t.idx, t.idxFile = x, f
					return
				}
				f.Close() // stale or damaged: rebuild in memory below
			}
		}
		var buf bytes.Buffer
		if err := buildIndex(t.data, &buf); err != nil {
			t.idxErr = fmt.Errorf("symbols file %s: %w", t.name, err)
			return
		}
		t.idx, t.idxErr = openIndex(buf.Bytes(), len(t.data))
	})
	return t.idx, t.idxErr
}

// Lookup returns the address of kernel (non-module) symbol name. When the
// name repeats, the first global (uppercase type) line wins, else the first
// line.
func (t *Table) Lookup(name string) (uint64, bool) {
	return t.lookup(name)
}

// LookupModule returns the address of symbol name in module (kallsyms
// module lines).
func (t *Table) LookupModule(module, name string) (uint64, bool) {
	return t.lookup(name + "\t[" + module + "]")
}

func (t *Table) lookup(key string) (uint64, bool) {
	t.mu.Lock()
	r, hit := t.cache[key]
	t.mu.Unlock()
	if hit {
		return r.addr, r.ok
	}
	x, err := t.index()
	if err != nil {
		return 0, false
	}
	bestOff, bestGlobal := -1, false
	x.each(t.data, []byte(key), func(off int, l line) bool {
		g := isGlobal(l.typ)
		if bestOff < 0 || (g && !bestGlobal) || (g == bestGlobal && off < bestOff) {
			bestOff, bestGlobal, r = off, g, result{l.addr, true}
		}
		return true
	})
	t.mu.Lock()
	t.cache[key] = r
	t.mu.Unlock()
	return r.addr, r.ok
}

// Len is the number of well-formed symbol lines.
func (t *Table) Len() int {
	x, err := t.index()
	if err != nil {
		return 0
	}
	return x.count
}

// Kind guesses where the table came from: "kallsyms" when it has module
// lines or its _text is not at the x86-64 link address (KASLR slid it),
// else "System.map". It is a hint: a kallsyms of a kernel booted with
// nokaslr and no modules looks like a System.map.
func (t *Table) Kind() string {
	if x, err := t.index(); err == nil && x.flags&flagModules != 0 {
		return "kallsyms"
	}
	if a, ok := t.Lookup("_text"); ok && a != 0xffffffff81000000 && a>>32 == 0xffffffff {
		return "kallsyms"
	}
	return "System.map"
}

// Each calls fn for every well-formed line in file order until fn returns
// false.
func (t *Table) Each(fn func(Symbol) bool) {
	for off := 0; off < len(t.data); {
		b, next := lineAt(t.data, off)
		off = next
		if l, ok := parseLine(b); ok && !fn(l.symbol()) {
			return
		}
	}
}

type sortEntry struct {
	addr uint64
	off  uint32
}

// Nearest returns the symbol at or below addr and addr's offset from it
// (kernel and module symbols alike), named "name" or "name [module]". The
// sorted index is built on first use.
func (t *Table) Nearest(addr uint64) (string, uint64, bool) {
	sym, ok := t.NearestSymbol(addr)
	if !ok {
		return "", 0, false
	}
	name := sym.Name
	if sym.Module != "" {
		name += " [" + sym.Module + "]"
	}
	return name, addr - sym.Addr, true
}

// NearestSymbol returns the symbol at or below addr (the first line among
// aliases), kernel and module symbols alike. The sorted index is built on
// first use.
func (t *Table) NearestSymbol(addr uint64) (Symbol, bool) {
	t.sortOnce.Do(func() {
		var s []sortEntry
		if uint64(len(t.data)) < 1<<32 {
			s = make([]sortEntry, 0, t.Len())
			for off := 0; off < len(t.data); {
				b, next := lineAt(t.data, off)
				if l, ok := parseLine(b); ok && l.addr != 0 {
					s = append(s, sortEntry{l.addr, uint32(off)})
				}
				off = next
			}
			// Stable, so that among aliases the first line wins.
			slices.SortStableFunc(s, func(a, b sortEntry) int {
				switch {
				case a.addr < b.addr:
					return -1
				case a.addr > b.addr:
					return 1
				}
				return 0
			})
		}
		t.sorted = s
	})
	i, found := slices.BinarySearchFunc(t.sorted, addr, func(e sortEntry, a uint64) int {
		switch {
		case e.addr < a:
			return -1
		case e.addr > a:
			return 1
		}
		return 0
	})
	if !found {
		if i == 0 {
			return Symbol{}, false
		}
		i--
		// Step back to the first alias at that address.
		for i > 0 && t.sorted[i-1].addr == t.sorted[i].addr {
			i--
		}
	}
	e := t.sorted[i]
	b, _ := lineAt(t.data, int(e.off))
	l, _ := parseLine(b)
	return l.symbol(), true
}
