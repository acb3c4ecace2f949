package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"xascript": func() { os.Exit(runCheckingStderr()) },
	})
}

// TestCLI runs the golden transcripts in testdata/script against the
// committed 4-level guest image.
func TestCLI(t *testing.T) {
	// Cleanup, not defer: the transcripts run as parallel subtests, after
	// this function returns.
	t.Cleanup(func() {
		if cyclicPath != "" {
			os.Remove(cyclicPath)
		}
		if noKallsymsPath != "" {
			os.Remove(noKallsymsPath)
		}
		if sharedDumps != "" {
			os.RemoveAll(sharedDumps)
		}
	})
	testscript.Run(t, testscript.Params{Dir: "testdata/script", Setup: setupCLI})
}

const variant = "x86_64-4level"

// writeModuleRecords writes the guest's own module list as modules.want,
// and what lkm.lua must emit on each dump the transcripts give it:
// modules.GUEST.want in text, modules.GUEST.jsonl with --json. GUEST is the
// dump's base name, the guest field of every record.
func writeModuleRecords(dir string, modules []string) error {
	// The names alone, one a line, for transcripts that print them.
	if err := os.WriteFile(filepath.Join(dir, "modules.want"), []byte(strings.Join(modules, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	for _, guest := range []string{"mem.elf.zst", "mem.raw.zst", "nokallsyms.raw"} {
		var text, js strings.Builder
		for _, m := range modules {
			fmt.Fprintf(&text, "guest=%s name=%s\n", guest, m)
			fmt.Fprintf(&js, "{\"guest\":%q,\"name\":%q}\n", guest, m)
		}
		if err := os.WriteFile(filepath.Join(dir, "modules."+guest+".want"), []byte(text.String()), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "modules."+guest+".jsonl"), []byte(js.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func abs(t testing.TB, rel string) string {
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// setupCLI exposes the image to the scripts ($IMAGE, $KERNEL, $SCRIPTS),
// writes the guest's own module list as the expected output, and makes the
// broken inputs that the error transcripts use.
func setupCLI(env *testscript.Env) error {
	img := abs(env.T().(testing.TB), filepath.Join("..", "..", "testdata", "images", variant))
	raw, err := os.ReadFile(filepath.Join(img, "truth.json"))
	if err != nil {
		return err
	}
	var truth struct {
		KernelRelease string   `json:"kernel_release"`
		Modules       []string `json:"modules"`
	}
	if err := json.Unmarshal(raw, &truth); err != nil {
		return err
	}
	kernel := filepath.Join(filepath.Dir(filepath.Dir(img)), "kernels", truth.KernelRelease)
	env.Setenv("IMAGE", img)
	env.Setenv("KERNEL", kernel)
	env.Setenv("SCRIPTS", abs(env.T().(testing.TB), filepath.Join("..", "..", "scripts")))
	work := env.WorkDir
	dumpsOnce.Do(func() {
		dumpsErr = decompressDumps(img, filepath.Join(filepath.Dir(img), "i386-pae"))
	})
	if dumpsErr != nil {
		return dumpsErr
	}
	cache := filepath.Join(work, "cache")
	if err := seedCache(cache); err != nil {
		return err
	}
	env.Setenv("XASCRIPT_CACHE_DIR", cache)
	checkStderrLines(env)
	if err := writeModuleRecords(work, truth.Modules); err != nil {
		return err
	}
	elf, err := unpack.Open(filepath.Join(img, "mem.elf.zst"), unpack.Options{CacheDir: sharedDumps})
	if err != nil {
		return err
	}
	defer elf.Close()
	// The crafted core of issue 8, from vmi/dump's fuzz corpus, where
	// TestBuiltSeeds keeps it equal to the bytes its builder writes.
	crafted, err := corpusBytes(filepath.Join("..", "..", "vmi", "dump", "testdata", "fuzz", "FuzzOpenELF", "issue8-note-13-bytes"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "crafted-note.core"), crafted, 0o644); err != nil {
		return err
	}
	// A dump cut short: headers promise segments the file does not hold.
	if err := os.WriteFile(filepath.Join(work, "truncated.elf"), elf.Data[:1<<20], 0o644); err != nil {
		return err
	}
	cyclicOnce.Do(func() {
		cyclicPath = filepath.Join(os.TempDir(), fmt.Sprintf("xascript-cyclic-%d.raw", os.Getpid()))
		cyclicErr = writeCorruptList(filepath.Join(img, "mem.raw.zst"), filepath.Join(img, "kallsyms.zst"), filepath.Join(kernel, "vmlinuz"), cyclicPath)
	})
	if cyclicErr != nil {
		return cyclicErr
	}
	noKallsymsOnce.Do(func() {
		noKallsymsPath = filepath.Join(os.TempDir(), fmt.Sprintf("xascript-nokallsyms-%d.raw", os.Getpid()))
		noKallsymsErr = writeNoKallsyms(filepath.Join(img, "mem.raw.zst"), noKallsymsPath)
	})
	if noKallsymsErr != nil {
		return noKallsymsErr
	}
	if err := os.Symlink(noKallsymsPath, filepath.Join(work, "nokallsyms.raw")); err != nil {
		return err
	}
	return os.Symlink(cyclicPath, filepath.Join(work, "cyclic.raw"))
}

// The corrupt image is 128 MiB: made once per test process, shared by the
// transcripts through a symlink, removed when TestCLI ends.
var (
	cyclicOnce sync.Once
	cyclicPath string
	cyclicErr  error
)

// Caches. Every transcript runs with its own XASCRIPT_CACHE_DIR
// ($WORK/cache): profiles derived from memory, BTF extracted from vmlinuz
// and decompressed symbol files start cold in each, as on a new machine,
// and no transcript reads or writes the developer's ~/.cache/xascript. The
// decompressed guest images are the one exception: decompressing 128 MiB
// per transcript would cost seconds and disk each time, and an entry is a
// pure function of a committed file (internal/unpack tests the cold path).
// They are decompressed once per test process into sharedDumps and
// hard-linked into each transcript's cache, where xascript finds them under
// the same key; TestCLI removes sharedDumps when it ends.
var (
	dumpsOnce   sync.Once
	sharedDumps string
	dumpsErr    error
)

// decompressDumps fills sharedDumps with the decompressed dumps of the
// image folders the transcripts use.
func decompressDumps(dirs ...string) error {
	d, err := os.MkdirTemp("", "xascript-cli-dumps-")
	if err != nil {
		return err
	}
	sharedDumps = d
	for _, dir := range dirs {
		for _, name := range []string{"mem.elf.zst", "mem.raw.zst"} {
			f, err := unpack.Open(filepath.Join(dir, name), unpack.Options{CacheDir: sharedDumps})
			if err != nil {
				return err
			}
			f.Close()
		}
	}
	return nil
}

// seedCache makes the cache folder dir holding links to the shared
// decompressed dumps (not their lock files), and nothing else.
func seedCache(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(sharedDumps)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		src, dst := filepath.Join(sharedDumps, e.Name()), filepath.Join(dir, e.Name())
		if err := os.Link(src, dst); err != nil {
			if err := os.Symlink(src, dst); err != nil {
				return err
			}
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no decompressed dumps in %s", sharedDumps)
	}
	return nil
}

// writeCorruptList copies the raw image with the second module's
// list.next pointing back at the first module: a cycle that never returns
// to the list head, as a rootkit or a torn read could leave it.
func writeCorruptList(rawPath, syms, btf, out string) error {
	t, err := dump.Open(rawPath, dump.Options{Options: unpack.Options{CacheDir: sharedDumps}})
	if err != nil {
		return err
	}
	defer t.Close()
	profCache, err := os.MkdirTemp("", "xascript-cli-profile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profCache)
	k, err := linux.Open(t, linux.Options{SymbolsPath: syms, BTFPath: btf, Unpack: unpack.Options{CacheDir: profCache}})
	if err != nil {
		return err
	}
	head, err := k.Symbol("modules")
	if err != nil {
		return err
	}
	ptr := make([]byte, 8)
	if err := k.ReadVirt(ptr, head); err != nil {
		return err
	}
	first := binary.LittleEndian.Uint64(ptr)
	if err := k.ReadVirt(ptr, first); err != nil {
		return err
	}
	second := binary.LittleEndian.Uint64(ptr)
	pa, err := k.Translate(second)
	if err != nil {
		return err
	}
	f, err := unpack.Open(rawPath, unpack.Options{CacheDir: sharedDumps})
	if err != nil {
		return err
	}
	defer f.Close()
	img := append([]byte(nil), f.Data...)
	if pa+8 > uint64(len(img)) {
		return fmt.Errorf("module node %#x at pa %#x outside the raw image", second, pa)
	}
	binary.LittleEndian.PutUint64(img[pa:], first)
	return os.WriteFile(out, img, 0o644)
}

// corpusBytes returns the first argument of a "go test fuzz v1" corpus
// file, a []byte.
func corpusBytes(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		return nil, fmt.Errorf("%s: not a corpus file whose first value is a []byte", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return []byte(s), nil
}
