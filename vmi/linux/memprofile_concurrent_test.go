package linux

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
)

// Several kernels sharing one profile cache: two guests with the same
// kernel in one run (xascript --qemu A --qemu B) or two xascripts at once.
// CI once saw the second guest's save replace the first one's entry between
// the first one's Open and its first type lookup ("open …/vmlinux.btf: no
// such file or directory").

// TestProfileCacheEntryGoneBeforeTypes: the entry a kernel was opened with
// disappears before its types are first loaded; its types still come from
// the guest, whether the profile was derived just now or read from the
// cache.
func TestProfileCacheEntryGoneBeforeTypes(t *testing.T) {
	tg, _, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	refOff := func() uint64 {
		k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
		if err != nil {
			t.Fatal(err)
		}
		off, err := k.Offsetof("task_struct", "comm")
		if err != nil {
			t.Fatal(err)
		}
		return off
	}()
	cache := unpack.Options{CacheDir: t.TempDir()}
	dropAll := func() {
		t.Helper()
		entries := cacheEntries(t, cache)
		if len(entries) != 1 {
			t.Fatalf("cache entries %v, want one", entries)
		}
		if err := os.RemoveAll(filepath.Dir(entries[0])); err != nil {
			t.Fatal(err)
		}
	}

	derived, err := Open(tg, Options{Unpack: cache})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(derived.SymbolsFrom, "profile cache") {
		t.Fatalf("first Open took its symbols from an empty cache: %s", derived.SymbolsFrom)
	}
	dropAll()
	if off, err := derived.Offsetof("task_struct", "comm"); err != nil || off != refOff {
		t.Errorf("derived profile, entry gone: offsetof(task_struct, comm) = %d, %v; want %d", off, err, refOff)
	}

	if _, err := Open(tg, Options{Unpack: cache}); err != nil { // caches it again
		t.Fatal(err)
	}
	cached, err := Open(tg, Options{Unpack: cache})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cached.SymbolsFrom, "profile cache") {
		t.Fatalf("second Open did not use the cache: %s", cached.SymbolsFrom)
	}
	dropAll()
	if off, err := cached.Offsetof("task_struct", "comm"); err != nil || off != refOff {
		t.Errorf("cached profile, entry gone: offsetof(task_struct, comm) = %d, %v; want %d", off, err, refOff)
	}
	if !strings.Contains(cached.TypesFrom, "could not be read") {
		t.Errorf("TypesFrom %q does not say the cached copy was gone", cached.TypesFrom)
	}
}

// TestProfileCacheConcurrentOpens: kernels opened at once on one empty
// cache all get their types, and the cache ends with one entry.
func TestProfileCacheConcurrentOpens(t *testing.T) {
	const guests = 4
	cache := unpack.Options{CacheDir: t.TempDir()}
	var wg sync.WaitGroup
	offs := make([]uint64, guests)
	errs := make([]error, guests)
	for i := range guests {
		tg, _, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := Open(tg, Options{Unpack: cache})
			if err == nil {
				offs[i], err = k.Offsetof("task_struct", "comm")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range guests {
		if errs[i] != nil || offs[i] != offs[0] {
			t.Errorf("guest %d: offsetof(task_struct, comm) = %d, %v (guest 0: %d)", i, offs[i], errs[i], offs[0])
		}
	}
	if e := cacheEntries(t, cache); len(e) != 1 {
		t.Errorf("cache entries %v, want one", e)
	}
}
