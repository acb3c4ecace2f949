package linux

import (
	"encoding/json"
	"errors"
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
