package linux

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// TestRealModuleBTF: a struct that only a module defines (struct
// isofs_sb_info, in isofs.ko) is answered from the module's BTF read out
// of guest memory. The expected layout was read from the .BTF section of
// Debian's isofs.ko for 6.1.0-56-cloud-amd64 (cilium/ebpf, split over the
// vmlinuz's BTF): a second source, the file the guest loaded, not its
// memory.
func TestRealModuleBTF(t *testing.T) {
	tg, _, dir := openImage(t, "x86_64-4level", "mem.elf.zst")
	k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := k.Sizeof("isofs_sb_info"); err != nil || n != 80 {
		t.Errorf("sizeof(isofs_sb_info) = %d, %v; isofs.ko says 80", n, err)
	}
	for member, want := range map[string]uint64{"s_nzones": 8, "s_rock_offset": 40, "s_mapping": 49,
		"s_fmode": 54, "s_uid": 64, "s_nls_iocharset": 72} {
		if got, err := k.Offsetof("struct isofs_sb_info", member); err != nil || got != want {
			t.Errorf("offsetof(isofs_sb_info, %s) = %d, %v; isofs.ko says %d", member, got, err, want)
		}
	}
	if _, err := k.Offsetof("isofs_sb_info", "s_bitfield_free"); !errors.Is(err, vmi.ErrNotFound) {
		t.Errorf("unknown member: %v", err)
	}
	if _, err := k.Offsetof("isofs_sb_info", "s_rock"); !errors.Is(err, vmi.ErrUnsupported) {
		t.Errorf("bitfield member: %v, want unsupported", err)
	}
	// vmlinux's own types are still answered from vmlinux's BTF, and a
	// missing member of a vmlinux struct is not looked up in modules.
	if off, err := k.Offsetof("module", "list"); err != nil || off != 8 {
		t.Errorf("offsetof(module, list) = %d, %v", off, err)
	}
	// Every loaded module carries BTF: the list read from memory names
	// exactly the modules the guest listed.
	loaded, skipped, err := k.ModuleBTF()
	if err != nil || len(skipped) != 0 {
		t.Fatalf("ModuleBTF: %v, skipped %v", err, skipped)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct{ Modules []string }
	if err := json.Unmarshal(raw, &truth); err != nil {
		t.Fatal(err)
	}
	slices.Sort(loaded)
	want := slices.Clone(truth.Modules)
	slices.Sort(want)
	if !slices.Equal(loaded, want) {
		t.Errorf("module BTF of %v; the guest's modules are %v", loaded, want)
	}
}

// patched overrides guest-physical bytes of a target, to make its memory
// hostile.
type patched struct {
	vmi.Target
	at   uint64
	data []byte
}

func (p patched) ReadPhys(buf []byte, pa uint64) error {
	if err := p.Target.ReadPhys(buf, pa); err != nil {
		return err
	}
	for i := range buf {
		if a := pa + uint64(i); a >= p.at && a < p.at+uint64(len(p.data)) {
			buf[i] = p.data[a-p.at]
		}
	}
	return nil
}

// A btf_modules list made cyclic in memory gives an error naming the
// list, not a hang; the rest of the profile still works.
func TestModuleBTFCyclicList(t *testing.T) {
	tg, _, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	head, err := k.Symbol("btf_modules")
	if err != nil {
		t.Fatal(err)
	}
	first, err := k.ReadUintVirt(head, 8)
	if err != nil {
		t.Fatal(err)
	}
	second, err := k.ReadUintVirt(first, 8)
	if err != nil {
		t.Fatal(err)
	}
	pa, err := k.Space.Translate(second) // second.next -> first
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	le64(b[:], first)
	k2, err := Open(patched{tg, pa, b[:]}, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Sizeof("isofs_sb_info"); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "cyclic") {
		t.Errorf("type lookup over a cyclic list: %v, want not found", err)
	}
	if _, _, err := k2.ModuleBTF(); !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "cyclic") {
		t.Errorf("ModuleBTF over a cyclic list: %v", err)
	}
	if off, err := k2.Offsetof("module", "name"); err != nil || off != 24 {
		t.Errorf("vmlinux types after a bad module list: %d, %v", off, err)
	}
}

func le64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// patchedMany overrides guest-physical bytes at several places.
type patchedMany struct {
	vmi.Target
	at map[uint64]byte
}

func (p patchedMany) ReadPhys(buf []byte, pa uint64) error {
	if err := p.Target.ReadPhys(buf, pa); err != nil {
		return err
	}
	for i := range buf {
		if v, ok := p.at[pa+uint64(i)]; ok {
			buf[i] = v
		}
	}
	return nil
}

// setVirt patches n bytes (little-endian v) at kernel address va.
func (p patchedMany) setVirt(t *testing.T, k *Kernel, va, v uint64, n int) {
	t.Helper()
	for i := range n {
		pa, err := k.Space.Translate(va + uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		p.at[pa] = byte(v >> (8 * i))
	}
}

// moduleBTFs returns, for each btf_modules entry of the guest, the address
// of its struct btf, with the offsets of data and data_size in it.
func moduleBTFs(t *testing.T, k *Kernel) (btfs []uint64, dataOff, sizeOff uint64) {
	t.Helper()
	off := func(s, m string) uint64 {
		o, err := k.Offsetof(s, m)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	listOff, btfOff := off("btf_module", "list"), off("btf_module", "btf")
	dataOff, sizeOff = off("btf", "data"), off("btf", "data_size")
	head, err := k.Symbol("btf_modules")
	if err != nil {
		t.Fatal(err)
	}
	for node, n := head, 0; n < 1000; n++ {
		if node, err = k.ReadUintVirt(node, 8); err != nil {
			t.Fatal(err)
		}
		if node == head {
			return btfs, dataOff, sizeOff
		}
		b, err := k.ReadUintVirt(node-listOff+btfOff, 8)
		if err != nil {
			t.Fatal(err)
		}
		btfs = append(btfs, b)
	}
	t.Fatal("btf_modules list does not end")
	return
}

// Every btf_modules entry made to point at the first one's blob: it is
// parsed once, the others are skipped as the same blob (before, every
// entry was read and parsed again, 4096 times for a list that long).
func TestModuleBTFSameBlob(t *testing.T) {
	tg, _, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	btfs, dataOff, sizeOff := moduleBTFs(t, k)
	if len(btfs) < 5 {
		t.Fatalf("%d modules with BTF, want at least 5", len(btfs))
	}
	data, err := k.ReadUintVirt(btfs[0]+dataOff, 8)
	if err != nil {
		t.Fatal(err)
	}
	size, err := k.ReadUintVirt(btfs[0]+sizeOff, 4)
	if err != nil {
		t.Fatal(err)
	}
	p := patchedMany{tg, map[uint64]byte{}}
	var total uint64
	for _, b := range btfs[1:] {
		n, err := k.ReadUintVirt(b+sizeOff, 4)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		p.setVirt(t, k, b+dataOff, data, 8)
		p.setVirt(t, k, b+sizeOff, size, 4)
	}
	t.Logf("%d modules, %d bytes of module BTF in the guest besides the first's %d", len(btfs), total, size)
	k2, err := Open(p, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	loaded, skipped, err := k2.ModuleBTF()
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || len(skipped) != len(btfs)-1 {
		t.Fatalf("loaded %v, skipped %d; want the first module only, %d skipped", loaded, len(skipped), len(btfs)-1)
	}
	for _, s := range skipped {
		if !strings.Contains(s, "is the blob of module "+loaded[0]+" again") {
			t.Errorf("skipped %q", s)
		}
	}
}

// Entries whose blobs each stay under the per-module cap but add up to
// more than maxModuleBTFTotal end the walk with a limit error before
// the excess is read (before, 16 MiB was read for every entry).
func TestModuleBTFTotalBound(t *testing.T) {
	tg, _, _ := openImage(t, "x86_64-4level", "mem.elf.zst")
	k, err := Open(tg, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	btfs, dataOff, sizeOff := moduleBTFs(t, k)
	perEntry := uint64(maxModuleBTFBytes)
	fit := int(maxModuleBTFTotal / perEntry)
	if len(btfs) <= fit {
		t.Fatalf("%d modules with BTF; the test needs more than %d", len(btfs), fit)
	}
	// Distinct pointers into the direct map (the guest has 128 MiB of RAM,
	// so [pa, pa+16 MiB) is readable): each blob is read, none parses.
	pob, err := k.Symbol("page_offset_base")
	if err != nil {
		t.Fatal(err)
	}
	directMap, err := k.ReadUintVirt(pob, 8)
	if err != nil {
		t.Fatal(err)
	}
	p := patchedMany{tg, map[uint64]byte{}}
	for i, b := range btfs {
		p.setVirt(t, k, b+dataOff, directMap+uint64(i)<<12, 8)
		p.setVirt(t, k, b+sizeOff, perEntry, 4)
	}
	k2, err := Open(p, Options{Unpack: unpack.Options{CacheDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = k2.ModuleBTF()
	if !errors.Is(err, vmi.ErrLimit) || !strings.Contains(err.Error(), fmt.Sprintf("entry %d ", fit)) {
		t.Fatalf("ModuleBTF over %d entries of %d bytes: %v; want a limit error at entry %d", len(btfs), perEntry, err, fit)
	}
	if _, err := k2.Sizeof("isofs_sb_info"); !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "past") {
		t.Errorf("type lookup: %v, want not found naming the bound", err)
	}
	if off, err := k2.Offsetof("module", "name"); err != nil || off != 24 {
		t.Errorf("vmlinux types after a bad module list: %d, %v", off, err)
	}
}
