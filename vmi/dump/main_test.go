package dump

import (
	"os"
	"sync"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
)

// realCache holds the real images decompressed for this test process,
// shared by the tests that open the same image (a 128 MiB image
// decompressed per test would cost seconds each) and removed by TestMain
// when the tests end. It is made on first use, so that fuzz worker
// processes, which never open a whole image and may be killed, leave
// nothing behind. XASCRIPT_CACHE_DIR points there too from then on, so no
// test reads or fills the developer's ~/.cache/xascript.
var (
	realCacheOnce sync.Once
	realCache     string
	realCacheErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if realCache != "" {
		os.RemoveAll(realCache)
	}
	os.Exit(code)
}

// realOptions opens a real image through realCache. When the folder cannot
// be made, the image is decompressed into memory instead.
func realOptions() Options {
	realCacheOnce.Do(func() {
		realCache, realCacheErr = os.MkdirTemp("", "xascript-dump-test-")
		if realCacheErr == nil {
			realCacheErr = os.Setenv("XASCRIPT_CACHE_DIR", realCache)
		}
	})
	if realCacheErr != nil {
		return Options{unpack.Options{NoCache: true}}
	}
	return Options{unpack.Options{CacheDir: realCache}}
}
