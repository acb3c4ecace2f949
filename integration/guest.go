package integration

import (
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

// RunScript runs a Lua script against a guest and returns its output.
func RunScript(g bindings.Guest, script string, args ...string) (string, error) {
	var out strings.Builder
	rt := runtime.New(runtime.Config{Stdout: &out, Env: &bindings.Env{Guest: g}, Libs: scripts.Libs()})
	defer rt.Close()
	err := rt.RunFile(script, args)
	return out.String(), err
}
