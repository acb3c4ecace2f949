// Package testcache keeps tests out of the developer's cache: a test
// binary's TestMain calls Main, which points XASCRIPT_CACHE_DIR at a fresh
// folder for that process and removes it when the tests end. Decompressed
// dumps, extracted BTF and derived profiles then come from this run alone,
// so a path that runs only on a cold cache is tested on every run, and a
// stale entry from another version cannot make a test pass.
package testcache

import (
	"fmt"
	"os"
	"testing"
)

// Main runs m with XASCRIPT_CACHE_DIR set to a temporary folder of its own
// and exits with m's status.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "xascript-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcache:", err)
		os.Exit(2)
	}
	os.Setenv("XASCRIPT_CACHE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
