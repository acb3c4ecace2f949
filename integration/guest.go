package integration

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/runtime"
	"github.com/xascript/xascript/scripts"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

// Variants are the guests every real-image test covers: one per paging mode
// and memory layout.
var Variants = []string{"x86_64-4level", "x86_64-5level", "x86_64-highmem", "i386-pae", "i386-legacy", "x86_64-6.12"}

// Dumps are the capture formats of an image, when present (highmem has no
// raw image: its RAM is not contiguous).
var Dumps = []string{"mem.elf.zst", "mem.raw.zst"}

// ProfileFiles returns the --symbols and --btf files for the image: the
// guest's own kallsyms and its vmlinuz on x86-64; System.map and BTF made by
// pahole from the debug vmlinux on i386, whose kernel has neither
// KALLSYMS_ALL nor BTF.
func (img *Image) ProfileFiles() (symbols, btf string) {
	if img.Truth.Arch == "i386" {
		return img.KernelFile("System.map.zst"), img.KernelFile("vmlinux.btf.zst")
	}
	return img.Path("kallsyms.zst"), img.KernelFile("vmlinuz")
}

// OpenKernel opens one of the image's dumps, decompressed through dumpCache,
// and locates its kernel with cache for what that derives (profiles, BTF).
func (img *Image) OpenKernel(dumpName string, dumpCache, cache unpack.Options) (vmi.Target, *linux.Kernel, error) {
	t, err := dump.Open(img.Path(dumpName), dump.Options{Options: dumpCache})
	if err != nil {
		return nil, nil, err
	}
	syms, btf := img.ProfileFiles()
	k, err := linux.Open(t, linux.Options{SymbolsPath: syms, BTFPath: btf, Unpack: cache})
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	return t, k, nil
}

// RunScript runs a Lua script against a guest and returns its output. The
// records it emits are JSON Lines (as with --json), for Records to read.
func RunScript(g bindings.Guest, script string, args ...string) (string, error) {
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: g, JSON: true}, Libs: scripts.Libs()})
	defer rt.Close()
	err := rt.RunFile(script, args)
	return out.String(), err
}

// Records parses out, the output of a script that emits records with --json
// (or through RunScript): one JSON object a line, every line one.
func Records(out string) ([]map[string]any, error) {
	var recs []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" && out == "" {
			break
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("line %d %q is not a JSON record: %w", i+1, line, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// RecordStrings returns the string field key of every record in out (as
// Records reads it); a record without it, or with another type, is an
// error.
func RecordStrings(out, key string) ([]string, error) {
	recs, err := Records(out)
	if err != nil {
		return nil, err
	}
	vals := make([]string, len(recs))
	for i, r := range recs {
		s, ok := r[key].(string)
		if !ok {
			return nil, fmt.Errorf("record %d %v has no string %q", i+1, r, key)
		}
		vals[i] = s
	}
	return vals, nil
}
