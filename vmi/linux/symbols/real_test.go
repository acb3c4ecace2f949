package symbols

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
)

// The guest image that testdata/build-guest.sh x86_64-4level captures:
// the guest's own /proc/kallsyms and the truth it printed.
const realImage = "../../../testdata/images/x86_64-4level"

func realFile(tb testing.TB, name string) string {
	tb.Helper()
	p := filepath.Join(realImage, name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("%v: run testdata/build-guest.sh x86_64-4level", err)
	}
	return p
}

// TestRealKallsyms checks every symbol truth.json lists against the
// captured kallsyms.
func TestRealKallsyms(t *testing.T) {
	raw, err := os.ReadFile(realFile(t, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		Symbols map[string]string `json:"symbols"`
		Sources map[string]string `json:"symbol_sources"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	if len(truth.Symbols) == 0 {
		t.Fatal("truth.json lists no symbols")
	}
	tab, err := Load(realFile(t, "kallsyms.zst"), unpack.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	for name, hex := range truth.Symbols {
		want, err := strconv.ParseUint(hex, 0, 64)
		if err != nil {
			t.Fatalf("truth %s = %q: %v", name, hex, err)
		}
		got, ok := tab.Lookup(name)
		if src := truth.Sources[name]; src != "" && src != "kallsyms" && !ok {
			continue // derived from System.map, not in kallsyms
		}
		if !ok || got != want {
			t.Errorf("Lookup(%s) = %#x, %v; truth %#x", name, got, ok, want)
		}
	}
	if tab.Kind() != "kallsyms" {
		t.Errorf("Kind = %q", tab.Kind())
	}
	if n := tab.Len(); n < 50_000 {
		t.Errorf("Len = %d, want a full kallsyms", n)
	}
	t.Logf("%d symbols, %d checked against truth.json", tab.Len(), len(truth.Symbols))
}

// BenchmarkLoadAndLookupReal is BenchmarkLoadAndLookup on the captured
// kallsyms (zstd-compressed; the cache holds the decompressed copy and the
// index).
func BenchmarkLoadAndLookupReal(b *testing.B) {
	benchLoad(b, realFile(b, "kallsyms.zst"), unpack.Options{CacheDir: b.TempDir()},
		[]string{"init_task", "modules", "linux_banner", "init_top_pgt", "_text"})
}

// TestRealSystemMap cross-checks the kernel's System.map with the guest's
// kallsyms: every global symbol kallsyms names must sit at its System.map
// address plus one KASLR slide.
func TestRealSystemMap(t *testing.T) {
	m, _ := filepath.Glob("../../../testdata/kernels/*-cloud-amd64/System.map.zst")
	if len(m) == 0 {
		t.Fatal("no testdata/kernels/*-cloud-amd64/System.map.zst: run testdata/build-guest.sh x86_64-4level")
	}
	opt := unpack.Options{CacheDir: t.TempDir()}
	sm, err := Load(m[0], opt)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	ks, err := Load(realFile(t, "kallsyms.zst"), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if sm.Kind() != "System.map" {
		t.Errorf("System.map Kind = %q", sm.Kind())
	}
	text, ok := sm.Lookup("_text")
	if !ok || text != 0xffffffff81000000 {
		t.Fatalf("System.map _text = %#x, %v", text, ok)
	}
	ktext, ok := ks.Lookup("_text")
	if !ok {
		t.Fatal("kallsyms has no _text")
	}
	slide := ktext - text
	checked := 0
	ks.Each(func(s Symbol) bool {
		if s.Module != "" || !s.Global() || s.Addr < ktext {
			return true
		}
		if a, ok := sm.Lookup(s.Name); ok {
			if a+slide != s.Addr {
				t.Errorf("%s: System.map %#x + slide %#x != kallsyms %#x", s.Name, a, slide, s.Addr)
			}
			checked++
		}
		return checked < 5000
	})
	if checked < 5000 {
		t.Errorf("only %d symbols in common", checked)
	}
	t.Logf("slide %#x; %d global symbols agree", slide, checked)
}
