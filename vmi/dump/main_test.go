package dump

import (
	"fmt"
	"os"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
)

// realCache holds the real images decompressed for this test process: made
// by TestMain, removed when the tests end, shared by the tests that open
// the same image (a 128 MiB image decompressed per test would cost seconds
// each). XASCRIPT_CACHE_DIR points there too, so no test reads or fills the
// developer's ~/.cache/xascript.
var realCache string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "xascript-dump-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dump tests:", err)
		os.Exit(1)
	}
	realCache = d
	os.Setenv("XASCRIPT_CACHE_DIR", d)
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// realOptions opens a real image through realCache.
func realOptions() Options { return Options{unpack.Options{CacheDir: realCache}} }
