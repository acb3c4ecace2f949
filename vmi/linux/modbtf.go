package linux

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/types"
)

// Module BTF (CONFIG_DEBUG_INFO_BTF_MODULES): each loaded module's types,
// as split BTF on top of vmlinux's. The kernel keeps them on its
// btf_modules list (kernel/bpf/btf.c: struct btf_module -> struct btf with
// data, data_size and name); the module's own copy (module.btf_data) is
// freed once it is loaded. A type a script asks for that vmlinux's BTF
// lacks is looked up there, so structs defined in a module (struct
// isofs_sb_info in isofs.ko) work as kernel ones do.
//
// Module BTF is decoded with cilium/ebpf's split-BTF support: it is read
// only when a lookup misses vmlinux's BTF, so its cost (tens of ms) is paid
// only by scripts that need it. Everything read from the list is bounded:
// each entry, the entries, and their sum, since the list is the guest's to
// forge (4096 nodes pointing at one 16 MiB blob would otherwise be 64 GiB
// read and 4096 specs parsed). Two entries with the same data pointer are
// one blob: the second is skipped, not parsed again.
const (
	maxBTFModules     = 4096
	maxModuleBTFBytes = 16 << 20
	// maxModuleBTFTotal bounds the bytes read over the whole list. Module
	// BTF is split BTF (only what vmlinux's lacks) and small: 135 KiB for
	// the 29 modules of the x86_64-4level guest (TestModuleBTFSameBlob
	// logs it), so even thousands of modules stay far below this.
	maxModuleBTFTotal = 64 << 20
)

// moduleBTFBudget is what the entries of one btf_modules list have used.
type moduleBTFBudget struct {
	bytes uint64            // declared sizes of the blobs read (or tried)
	data  map[uint64]string // data pointer -> the module whose BTF it was
}

// errModuleBTFTotal ends the walk of a list whose blobs add up to more
// than maxModuleBTFTotal.
var errModuleBTFTotal = errors.New("module BTF total exceeded")

type moduleTypes struct {
	mods    []moduleSpec
	skipped []string     // modules whose BTF could not be read, and why
	graph   *moduleGraph // their types in the one type graph
}

type moduleSpec struct {
	name string
	spec *btf.Spec
}

// ModuleBTF lists the modules whose BTF was read from memory (loading it on
// first use), and those skipped with the reason.
func (k *Kernel) ModuleBTF() (loaded, skipped []string, err error) {
	m, err := k.moduleTypes()
	if err != nil {
		return nil, nil, err
	}
	for _, s := range m.mods {
		loaded = append(loaded, s.name)
	}
	return loaded, m.skipped, nil
}

func (k *Kernel) moduleTypes() (*moduleTypes, error) {
	k.modOnce.Do(func() { k.mods, k.modsErr = k.loadModuleTypes() })
	return k.mods, k.modsErr
}

func (k *Kernel) loadModuleTypes() (*moduleTypes, error) {
	t, err := k.profileTypes()
	if err != nil {
		return nil, err
	}
	base, ok := t.(*btfsrc.Types)
	if !ok {
		return nil, fmt.Errorf("module BTF needs the kernel's own BTF as its base (types come from %s): %w", k.TypesFrom, vmi.ErrNotFound)
	}
	head, err := k.Symbol("btf_modules")
	if err != nil {
		return nil, fmt.Errorf("module BTF: %w", err)
	}
	var off struct{ list, btf, data, size, name uint64 }
	for _, f := range []struct {
		dst           *uint64
		strct, member string
	}{{&off.list, "btf_module", "list"}, {&off.btf, "btf_module", "btf"},
		{&off.data, "btf", "data"}, {&off.size, "btf", "data_size"}, {&off.name, "btf", "name"}} {
		if *f.dst, err = base.Offsetof(f.strct, f.member); err != nil {
			return nil, fmt.Errorf("module BTF: %w", err)
		}
	}
	nameMember, err := types.FieldOf(base.Graph(), "btf", "name")
	if err != nil || nameMember.Type.Size == 0 || nameMember.Type.Size > 256 {
		return nil, fmt.Errorf("module BTF: struct btf member name: %v: %w", err, vmi.ErrFormat)
	}
	l := moduleBTFLayout{list: off.list, btf: off.btf, data: off.data, size: off.size, name: off.name,
		nameLen: nameMember.Type.Size, ptr: base.PointerSize()}
	baseSpec, err := btf.LoadSpecFromReader(bytes.NewReader(base.Raw()))
	if err != nil {
		return nil, fmt.Errorf("module BTF: vmlinux BTF as base: %w", err)
	}
	m := &moduleTypes{}
	m.graph = &moduleGraph{base: base, baseSpec: baseSpec}
	budget := &moduleBTFBudget{data: map[uint64]string{}}
	seen := map[uint64]bool{head: true}
	node, err := k.ReadUintVirt(head, l.ptr)
	for n := 0; ; n++ {
		if err != nil {
			return nil, fmt.Errorf("module BTF: btf_modules list at %#x: %w", head, err)
		}
		if node == head {
			m.graph.mods = m.mods
			return m, nil
		}
		if seen[node] {
			return nil, fmt.Errorf("module BTF: btf_modules list at %#x is cyclic: node %#x seen again: %w", head, node, vmi.ErrFormat)
		}
		if n >= maxBTFModules {
			return nil, fmt.Errorf("module BTF: btf_modules list at %#x: more than %d entries: %w", head, maxBTFModules, vmi.ErrLimit)
		}
		seen[node] = true
		name, spec, rerr := k.readModuleBTF(node-l.list, l, baseSpec, budget)
		if errors.Is(rerr, errModuleBTFTotal) {
			return nil, fmt.Errorf("module BTF: btf_modules list at %#x: entry %d (%s) would take the BTF read past %d bytes (%d so far): %w",
				head, n, orNone(name), uint64(maxModuleBTFTotal), budget.bytes, vmi.ErrLimit)
		}
		if rerr != nil {
			m.skipped = append(m.skipped, fmt.Sprintf("%s: %v", orNone(name), rerr))
		} else {
			m.mods = append(m.mods, moduleSpec{name, spec})
		}
		node, err = k.ReadUintVirt(node, l.ptr)
	}
}

// moduleBTFLayout holds the offsets of struct btf_module and struct btf
// members, from vmlinux's BTF.
type moduleBTFLayout struct {
	list, btf, data, size, name, nameLen uint64
	ptr                                  int
}

// readModuleBTF reads one btf_module's BTF and decodes it over base,
// charging its size to budget first.
func (k *Kernel) readModuleBTF(bm uint64, l moduleBTFLayout, base *btf.Spec, budget *moduleBTFBudget) (string, *btf.Spec, error) {
	b, err := k.ReadUintVirt(bm+l.btf, l.ptr)
	if err != nil {
		return "", nil, err
	}
	nameBuf := make([]byte, l.nameLen)
	if err := k.ReadVirt(nameBuf, b+l.name); err != nil {
		return "", nil, err
	}
	name, _, _ := bytes.Cut(nameBuf, []byte{0})
	data, err := k.ReadUintVirt(b+l.data, l.ptr)
	if err != nil {
		return string(name), nil, err
	}
	size, err := k.ReadUintVirt(b+l.size, 4)
	if err != nil {
		return string(name), nil, err
	}
	if size == 0 || size > maxModuleBTFBytes {
		return string(name), nil, fmt.Errorf("BTF of %d bytes at %#x: %w", size, data, vmi.ErrLimit)
	}
	if prev, dup := budget.data[data]; dup {
		return string(name), nil, fmt.Errorf("BTF at %#x is the blob of module %s again: %w", data, orNone(prev), vmi.ErrFormat)
	}
	if size > maxModuleBTFTotal-budget.bytes {
		return string(name), nil, errModuleBTFTotal
	}
	// Charged before the read: a blob that fails to read still cost it.
	budget.bytes += size
	budget.data[data] = string(name)
	raw := make([]byte, size)
	if err := k.ReadVirt(raw, data); err != nil {
		return string(name), nil, err
	}
	spec, err := btf.LoadSplitSpecFromReader(bytes.NewReader(raw), base)
	if err != nil {
		return string(name), nil, fmt.Errorf("BTF at %#x: %v: %w", data, err, vmi.ErrFormat)
	}
	return string(name), spec, nil
}

// withModuleError adds why module BTF could not be asked to a type-not-found
// error, when that is more than "there is none".
func withModuleError(err, moduleErr error) error {
	if errors.Is(moduleErr, vmi.ErrNotFound) {
		return err
	}
	return fmt.Errorf("%w (and module BTF could not be read: %v)", err, moduleErr)
}
