package symbols

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

const sampleKallsyms = `0000000000000000 A fixed_percpu_data
0000000000001000 D cpu_debug_store
ffffffff9a000000 T _text
ffffffff9a000000 T startup_64
ffffffff9a001000 t cleanup
ffffffff9a002000 T cleanup
ffffffff9a003000 t local_only
ffffffff9a004000 t local_only
ffffffff9a005000 d modules
ffffffffc0123000 t cleanup	[e1000]
ffffffffc0124000 T e1000_probe	[e1000]
ffffffffc0200000 t init_module	[dummy]
`

const sampleSystemMap = `0000000000000000 D __per_cpu_start
ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff82a15940 D init_task
ffffffff82a2a0b0 d modules`

func TestLookup(t *testing.T) {
	tab, err := Parse([]byte(sampleKallsyms), "kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want uint64
		ok   bool
	}{
		{"_text", 0xffffffff9a000000, true},
		{"cleanup", 0xffffffff9a002000, true},    // the global beats the earlier local
		{"local_only", 0xffffffff9a003000, true}, // no global: the first line
		{"modules", 0xffffffff9a005000, true},
		{"fixed_percpu_data", 0, true},
		{"e1000_probe", 0, false}, // module symbols need LookupModule
		{"clean", 0, false},       // no prefix matches
		{"leanup", 0, false},      // no suffix matches
		{"nonexistent", 0, false},
	} {
		got, ok := tab.Lookup(c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("Lookup(%q) = %#x, %v; want %#x, %v", c.name, got, ok, c.want, c.ok)
		}
		// Memoized answers must match.
		if got2, ok2 := tab.Lookup(c.name); got2 != got || ok2 != ok {
			t.Errorf("second Lookup(%q) = %#x, %v", c.name, got2, ok2)
		}
	}
	if a, ok := tab.LookupModule("e1000", "cleanup"); !ok || a != 0xffffffffc0123000 {
		t.Errorf("LookupModule(e1000, cleanup) = %#x, %v", a, ok)
	}
	if _, ok := tab.LookupModule("dummy", "cleanup"); ok {
		t.Errorf("LookupModule(dummy, cleanup) found a symbol of another module")
	}
	if n := tab.Len(); n != 12 {
		t.Errorf("Len = %d, want 12", n)
	}
	if k := tab.Kind(); k != "kallsyms" {
		t.Errorf("Kind = %q", k)
	}
}

func TestSystemMap(t *testing.T) {
	tab, err := Parse([]byte(sampleSystemMap), "System.map") // no final newline
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := tab.Lookup("modules"); !ok || a != 0xffffffff82a2a0b0 {
		t.Errorf("Lookup(modules) = %#x, %v", a, ok)
	}
	if k := tab.Kind(); k != "System.map" {
		t.Errorf("Kind = %q", k)
	}
	var names []string
	tab.Each(func(s Symbol) bool { names = append(names, s.Name); return len(names) < 3 })
	if strings.Join(names, ",") != "__per_cpu_start,_text,startup_64" {
		t.Errorf("Each = %v", names)
	}
}

func TestNearest(t *testing.T) {
	tab, err := Parse([]byte(sampleKallsyms), "kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr uint64
		name string
		off  uint64
		ok   bool
	}{
		{0xffffffff9a000000, "_text", 0, true}, // aliases: the first line
		{0xffffffff9a000010, "_text", 0x10, true},
		{0xffffffff9a002fff, "cleanup", 0xfff, true},
		{0xffffffffc0124008, "e1000_probe [e1000]", 8, true},
		{0x1000, "cpu_debug_store", 0, true},
		{0xfff, "", 0, false}, // below everything non-zero
	} {
		name, off, ok := tab.Nearest(c.addr)
		if name != c.name || off != c.off || ok != c.ok {
			t.Errorf("Nearest(%#x) = %q+%#x, %v; want %q+%#x, %v", c.addr, name, off, ok, c.name, c.off, c.ok)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		data, want string
	}{
		{"", "no symbols"},
		{"\n\n", "no symbols"},
		{"ffffffff81000000 T _text\nffffffff81000000 T startup_64\nhello world\n", "line 3: not a System.map/kallsyms line"},
		{"{\"json\": 1}\n", "line 1: not a System.map/kallsyms line"},
		{"ffffffff81000000 T\n", "line 1"},
		{"ffffffff81000000 T two words\n", "line 1"},
		{"ffffffff81000000 t name\t[mod\n", "line 1"},
		{"0000000000000000 T _text\n0000000000000000 t foo\t[mod]\n", "all addresses are zero: captured without root or with kptr_restrict"},
	} {
		_, err := Parse([]byte(c.data), "X")
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, vmi.ErrFormat) {
			t.Errorf("Parse(%q) = %v; want an ErrFormat containing %q", c.data, err, c.want)
		}
	}
	// Malformed lines past the checked prefix are skipped, not fatal.
	data := strings.Repeat("ffffffff81000000 T a\n", checkLines) + "garbage\nffffffff81000010 T b\n"
	tab, err := Parse([]byte(data), "X")
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := tab.Lookup("b"); !ok || a != 0xffffffff81000010 {
		t.Errorf("Lookup(b) past a bad line = %#x, %v", a, ok)
	}
}

// TestLoadCachedIndex loads a compressed file twice: the second load must
// use the cached index and give the same answers.
func TestLoadCachedIndex(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kallsyms")
	if err := os.WriteFile(path, []byte(sampleKallsyms), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := unpack.Options{CacheDir: filepath.Join(dir, "cache")}
	for range 2 {
		tab, err := Load(path, opt)
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := tab.Lookup("cleanup"); !ok || a != 0xffffffff9a002000 {
			t.Errorf("Lookup(cleanup) = %#x, %v", a, ok)
		}
		if tab.idxFile == nil {
			t.Errorf("index not cached on disk")
		}
		tab.Close()
	}
	if _, err := Load(filepath.Join(dir, "missing"), opt); err == nil {
		t.Errorf("Load of a missing file succeeded")
	}
}

// synthKallsyms writes a kallsyms-sized file (n lines, ~45 bytes each) and
// returns its path and the names the benchmark looks up.
func synthKallsyms(tb testing.TB, n int) (string, []string) {
	var sb strings.Builder
	sb.Grow(n * 45)
	addr := uint64(0xffffffff9a000000)
	for i := range n {
		typ := "Tt"[i%2]
		fmt.Fprintf(&sb, "%016x %c %s_%d\n", addr, typ, []string{"do_sys_open", "tcp_v4_rcv", "kmem_cache_alloc", "x"}[i%4], i)
		addr += 48
	}
	for _, s := range []string{"init_task", "modules", "linux_banner", "init_top_pgt", "_text"} {
		fmt.Fprintf(&sb, "%016x d %s\n", addr, s)
		addr += 8
	}
	for i := range 3000 {
		fmt.Fprintf(&sb, "%016x t fn_%d\t[mod%d]\n", 0xffffffffc0000000+uint64(i)*64, i, i/50)
	}
	path := filepath.Join(tb.TempDir(), "kallsyms")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path, []string{"init_task", "modules", "linux_banner", "init_top_pgt", "do_sys_open_100000"}
}

// BenchmarkLoadAndLookup is the per-run cost with a warm cache: Load of a
// 200k-line kallsyms and five lookups.
func BenchmarkLoadAndLookup(b *testing.B) {
	path, names := synthKallsyms(b, 200_000)
	opt := unpack.Options{CacheDir: b.TempDir()}
	benchLoad(b, path, opt, names)
}

func benchLoad(b *testing.B, path string, opt unpack.Options, names []string) {
	warm, err := Load(path, opt) // fills the cache
	if err != nil {
		b.Fatal(err)
	}
	warm.Lookup(names[0])
	warm.Close()
	b.ReportAllocs()
	for b.Loop() {
		tab, err := Load(path, opt)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range names {
			if _, ok := tab.Lookup(n); !ok {
				b.Fatalf("%s not found", n)
			}
		}
		tab.Close()
	}
}

// BenchmarkBuildIndex is the one-time cost of indexing a 200k-line file.
func BenchmarkBuildIndex(b *testing.B) {
	path, _ := synthKallsyms(b, 200_000)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := buildIndex(data, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
