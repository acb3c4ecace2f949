package dwarfsrc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/xascript/xascript/internal/progress"
	"github.com/xascript/xascript/internal/unpack"
)

// TestIndexProgress: building the index shows its compile units, all of
// them by the end, once (a later Load maps the index and shows nothing);
// without a cache it shows the same but promises nothing.
func TestIndexProgress(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmlinux")
	src, err := os.ReadFile("testdata/fixture32.elf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, noCache := range []bool{false, true} {
		var log bytes.Buffer
		meter := progress.New(&log, false)
		meter.Delay = 0
		opt := unpack.Options{CacheDir: filepath.Join(dir, "cache"), NoCache: noCache, Progress: meter}
		var units int
		for range 2 {
			ty, err := Load(path, opt)
			if err != nil {
				t.Fatal(err)
			}
			ty.mustOff(t, "struct module", "list")
			offs, err := unitOffsets(ty.info, ty.bo)
			if err != nil {
				t.Fatal(err)
			}
			if units = len(offs); units < 2 {
				t.Fatalf("fixture has %d compile units", units)
			}
			ty.Close()
		}
		note, runs := ` \(later runs use the cache\)`, 1
		if noCache {
			note, runs = "", 2 // nothing kept: each Load scans again
		}
		line := fmt.Sprintf(`xascript: vmlinux: indexed the DWARF of %d compile units in \d+\.\d s%s\n`, units, note)
		if !regexp.MustCompile(`^(?:` + line + `){` + fmt.Sprint(runs) + `}$`).MatchString(log.String()) {
			t.Errorf("no cache %v: progress %q, want %d× %q", noCache, log.String(), runs, line)
		}
	}
}
