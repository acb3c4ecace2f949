package linux

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/isf"
	"github.com/xascript/xascript/vmi/types"
)

// crossCheckedStructs are the structs the example monitors read: every
// member of each must be the same Field in every source.
var crossCheckedStructs = []string{"module", "task_struct", "mm_struct", "vm_area_struct", "list_head", "hlist_node",
	"dentry", "inode", "file", "path", "qstr", "sock", "sock_common", "sk_buff", "super_block", "cred", "files_struct",
	"fdtable", "mount", "vfsmount", "net_device", "pid", "upid", "kobject", "kset"}

// TestTypeSourcesAgree loads the layouts of each committed 64-bit guest's
// kernel from three sources into the one type graph, and checks that every
// member of the structs monitors read resolves to the same Field (offset,
// bit position and size, and the size, kind, signedness and canonical name
// of its type) in each: the BTF the kernel holds in its memory (the image),
// the BTF of the vmlinuz file the guest booted (--btf), and a Volatility ISF
// of that kernel (--isf, as written by ExportISF and read back by the ISF
// loader). DWARF is compared with BTF in dwarfsrc's real test (the debug
// vmlinux is not committed).
func TestTypeSourcesAgree(t *testing.T) {
	for _, variant := range []string{"x86_64-4level", "x86_64-6.12"} {
		t.Run(variant, func(t *testing.T) {
			tg, _, _ := openImage(t, variant, "mem.elf.zst")
			var truth struct {
				KernelRelease string `json:"kernel_release"`
			}
			testimages.LoadTruth(t, variant, &truth)
			vmlinuz := filepath.Join(testimages.Root(t), "..", "kernels", truth.KernelRelease, "vmlinuz")
			opt := unpack.Options{CacheDir: t.TempDir()}

			mem, err := Open(tg, Options{Unpack: opt})
			if err != nil {
				t.Fatal(err)
			}
			memTypes, err := mem.Types()
			if err != nil {
				t.Fatal(err)
			}
			file, err := btfsrc.Load(vmlinuz, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()

			// The ISF of this kernel, as --isf reads it.
			var buf bytes.Buffer
			if err := mem.ExportISF(&buf, "0.0.1", ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			isfPath := filepath.Join(t.TempDir(), "kernel.json")
			if err := os.WriteFile(isfPath, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			prof, err := isf.Load(isfPath)
			if err != nil {
				t.Fatal(err)
			}
			for _, other := range []struct {
				name string
				g    types.Graph
			}{{"BTF of " + vmlinuz, file.Graph()}, {"ISF", prof.Graph()}} {
				total := 0
				for _, s := range crossCheckedStructs {
					n, diffs := types.CompareStruct(memTypes, other.g, s)
					for _, d := range diffs {
						t.Errorf("BTF in memory vs %s: %s", other.name, d)
					}
					total += n
				}
				if total < 900 {
					t.Errorf("only %d members compared with %s", total, other.name)
				}
				t.Logf("%d members of %d structs agree between BTF in memory and %s", total, len(crossCheckedStructs), other.name)
			}
			// Bitfields are among them, and has_member's view of them holds.
			if f, err := types.FieldOf(memTypes, "task_struct", "in_execve"); err != nil || f.BitSize != 1 {
				t.Errorf("task_struct.in_execve = %+v, %v; want a 1-bit bitfield", f, err)
			}
		})
	}
}
