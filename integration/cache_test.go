package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

// Caches in this package's tests. What xascript derives and keeps
// (profiles derived from memory, BTF extracted from a vmlinuz, decompressed
// symbol files) goes to a cache directory of each test's own (cacheOpts), so
// every test takes the cold path a new machine takes, and a profile left by
// an earlier test or in the developer's ~/.cache cannot make a test pass.
// The decompressed dumps are the exception: they are shared by the whole
// test process in dumpCache (dumpOptions), made in TestMain and removed at
// its end. Decompressing a guest image per test would cost seconds each and
// fill the disk (the highmem image alone maps RAM above 4 GiB), and an entry
// is a pure function of a committed file whose cold path internal/unpack
// tests itself.
//
// XASCRIPT_CACHE_DIR points at a folder of its own while the tests run:
// anything that still uses the default cache lands there and not in
// ~/.cache, and TestMain fails the run when it is not empty afterwards.
var (
	dumpCache    string
	defaultCache string
)

// setupCaches makes the shared dump cache and the sentinel default cache;
// the returned check removes both and reports whether a test used the
// default.
func setupCaches() (check func() error, err error) {
	base, err := os.MkdirTemp("", "xascript-integration-")
	if err != nil {
		return nil, err
	}
	dumpCache, defaultCache = filepath.Join(base, "dumps"), filepath.Join(base, "default")
	if err := os.Mkdir(defaultCache, 0o700); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	if err := os.Setenv("XASCRIPT_CACHE_DIR", defaultCache); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	return func() error {
		defer os.RemoveAll(base)
		left, err := os.ReadDir(defaultCache)
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return fmt.Errorf("a test used the default cache (XASCRIPT_CACHE_DIR), which holds %s: give it cacheOpts(t) or dumpOptions()", left[0].Name())
		}
		return nil
	}, nil
}

// cacheOpts is a fresh, empty cache directory for t.
func cacheOpts(t testing.TB) unpack.Options { return unpack.Options{CacheDir: t.TempDir()} }

// dumpOptions opens a dump through the shared decompressed-dump cache.
func dumpOptions() dump.Options { return dump.Options{Options: unpack.Options{CacheDir: dumpCache}} }

// openKernel opens one of img's dumps through the shared dump cache and
// locates its kernel with a cache of t's own.
func openKernel(t testing.TB, img *Image, dumpName string) (vmi.Target, *linux.Kernel, error) {
	return img.OpenKernel(dumpName, dumpOptions().Options, cacheOpts(t))
}

// openCore loads the variant's image and opens the kernel in its ELF core
// (mem.elf.zst), closed when t ends; any failure ends t.
func openCore(t testing.TB, variant string) (*Image, *linux.Kernel) {
	t.Helper()
	img, err := LoadImage(variant)
	if err != nil {
		t.Fatal(err)
	}
	target, k, err := openKernel(t, img, "mem.elf.zst")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	return img, k
}

// cacheEnv is the environment for an xascript process that t runs: the
// test's own cache directory.
func cacheEnv(t testing.TB) []string {
	return append(os.Environ(), "XASCRIPT_CACHE_DIR="+t.TempDir())
}
