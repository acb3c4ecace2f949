package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xascript/xascript/integration"
	"github.com/xascript/xascript/internal/unpack"
)

// modulesOn runs lkm.lua on dump and returns the module names.
func modulesOn(t *testing.T, dump string) []string {
	t.Helper()
	out, errOut, code := runCLI(t, "../../scripts/examples/lkm.lua", "--file", dump, "-q")
	if code != exitOK {
		t.Fatalf("lkm.lua: status %d: %s", code, errOut)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		_, name, ok := strings.Cut(line, " name=")
		if !ok {
			t.Fatalf("lkm.lua printed %q", line)
		}
		names = append(names, name)
	}
	return names
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestAllowWriteOnRawDump tampers with a copy of the committed 4-level
// guest's raw dump: rename-module.lua renames a module; without
// --allow-write it fails with the read-only message and the file keeps its
// checksum; with it the file changes, and a later run (a fresh open of the
// file) lists the new name in the old one's place, every other module as
// the guest listed it. A compressed dump refuses even with the flag.
func TestAllowWriteOnRawDump(t *testing.T) {
	t.Setenv("XASCRIPT_CACHE_DIR", t.TempDir())
	t.Setenv("XASCRIPT_IMAGES", abs(t, filepath.Join("..", "..", "testdata", "images")))
	img, err := integration.LoadImage(variant)
	if err != nil {
		t.Fatal(err)
	}
	src, err := unpack.Open(imagePath(t, "mem.raw.zst"), unpack.Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(t.TempDir(), "mem.raw")
	err = os.WriteFile(raw, src.Data, 0o644)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := img.Truth.Modules
	victim := want[len(want)/2]
	rename := "../../scripts/examples/rename-module.lua"

	sum := fileSum(t, raw)
	_, errOut, code := runCLI(t, rename, "--file", raw, "-q", "--", victim, "xa_renamed")
	if code != exitScript || !strings.Contains(errOut, "write_bytes: guest memory is read-only; run with --allow-write") {
		t.Fatalf("without --allow-write: status %d, stderr %q", code, errOut)
	}
	if fileSum(t, raw) != sum {
		t.Fatal("a run without --allow-write changed the dump file")
	}

	out, errOut, code := runCLI(t, rename, "--file", raw, "-q", "--allow-write", "--", victim, "xa_renamed")
	if code != exitOK || !strings.Contains(out, "old="+victim+" new=xa_renamed") {
		t.Fatalf("with --allow-write: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	if fileSum(t, raw) == sum {
		t.Fatal("the dump file is unchanged after the write")
	}
	tampered := slices.Clone(want)
	tampered[len(want)/2] = "xa_renamed"
	if got := modulesOn(t, raw); !slices.Equal(got, tampered) {
		t.Fatalf("after the rename lkm.lua lists %v, want %v", got, tampered)
	}

	_, errOut, code = runCLI(t, rename, "--file", imagePath(t, "mem.raw.zst"), "-q", "--allow-write", "--", victim, "x")
	if code != exitScript || !strings.Contains(errOut, "this target cannot be written") || !strings.Contains(errOut, "zstd -d") {
		t.Fatalf("compressed dump with --allow-write: status %d, stderr %q", code, errOut)
	}
}
