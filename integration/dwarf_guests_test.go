//go:build guests

package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi/dump"
	"github.com/xascript/xascript/vmi/linux"
)

// TestGuestI386DWARF: the i386 kernel (no KALLSYMS_ALL, no BTF) completed
// by System.map and the DWARF of the -dbg package's vmlinux. The vmlinux is
// 315 MB and not committed, so this runs in the heavy suite (make
// test-guests, build tag "guests"), which fetches it; XASCRIPT_DWARF_VMLINUX
// names it.
func TestGuestI386DWARF(t *testing.T) {
	vmlinux := os.Getenv("XASCRIPT_DWARF_VMLINUX")
	if vmlinux == "" {
		t.Fatal("XASCRIPT_DWARF_VMLINUX is not set: make test-guests sets it to the fetched i386 debug vmlinux")
	}
	img, err := LoadImage("i386-pae")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range Dumps {
		target, err := dump.Open(img.Path(d), dumpOptions())
		if err != nil {
			t.Fatal(err)
		}
		k, err := linux.Open(target, linux.Options{SymbolsPath: img.KernelFile("System.map.zst"), DWARFPath: vmlinux, Unpack: cacheOpts(t)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := RunScript(k, lkm)
		target.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := moduleNames(t, out); strings.Join(got, ",") != strings.Join(img.Truth.Modules, ",") {
			t.Fatalf("%s: lkm.lua with DWARF printed %v, the guest listed %v", d, got, img.Truth.Modules)
		}
	}
}
