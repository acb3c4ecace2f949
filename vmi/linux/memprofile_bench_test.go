package linux

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi/dump"
)

// BenchmarkProfileWarmOpen: Open of x86_64-4level with its profile cached,
// without and with a first type lookup: the evidence checks are the
// kallsyms span at every open and the BTF at the first lookup.
func BenchmarkProfileWarmOpen(b *testing.B) {
	tg, err := dump.Open(filepath.Join("..", "..", "testdata", "images", "x86_64-4level", "mem.elf.zst"), dump.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	cache := unpack.Options{CacheDir: b.TempDir()}
	if _, err := Open(tg, Options{Unpack: cache}); err != nil {
		b.Fatal(err)
	}
	for _, types := range []bool{false, true} {
		name := "symbols"
		if types {
			name = "types"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				k, err := Open(tg, Options{Unpack: cache})
				if err != nil {
					b.Fatal(err)
				}
				if !strings.HasPrefix(k.SymbolsFrom, "profile cache") {
					b.Fatalf("not from the cache: %s", k.SymbolsFrom)
				}
				if types {
					if _, err := k.Offsetof("module", "name"); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
