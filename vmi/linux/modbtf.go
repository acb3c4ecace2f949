package linux

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/memberpath"
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
	skipped []string // modules whose BTF could not be read, and why
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
	t, err := k.Types()
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
	nameMember, err := base.Member("btf", "name")
	if err != nil || nameMember.Size == 0 || nameMember.Size > 256 {
		return nil, fmt.Errorf("module BTF: struct btf member name: %v: %w", err, vmi.ErrFormat)
	}
	l := moduleBTFLayout{list: off.list, btf: off.btf, data: off.data, size: off.size, name: off.name,
		nameLen: nameMember.Size, ptr: base.PointerSize()}
	baseSpec, err := btf.LoadSpecFromReader(bytes.NewReader(base.Raw()))
	if err != nil {
		return nil, fmt.Errorf("module BTF: vmlinux BTF as base: %w", err)
	}
	m := &moduleTypes{}
	budget := &moduleBTFBudget{data: map[uint64]string{}}
	seen := map[uint64]bool{head: true}
	node, err := k.ReadUintVirt(head, l.ptr)
	for n := 0; ; n++ {
		if err != nil {
			return nil, fmt.Errorf("module BTF: btf_modules list at %#x: %w", head, err)
		}
		if node == head {
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

// moduleType finds a struct, union or other named type in module BTF.
func (m *moduleTypes) find(typeName string) (btf.Type, string, bool) {
	name := strings.TrimSpace(typeName)
	for _, p := range []string{"struct ", "union ", "enum "} {
		name = strings.TrimPrefix(name, p)
	}
	for _, s := range m.mods {
		types, err := s.spec.AnyTypesByName(name)
		if err != nil {
			continue
		}
		for _, t := range types {
			switch t.(type) {
			case *btf.Struct, *btf.Union, *btf.Typedef, *btf.Enum, *btf.Int:
				return t, s.name, true
			}
		}
	}
	return nil, "", false
}

// offsetof resolves a member path (memberpath syntax) in a module type.
func (m *moduleTypes) offsetof(typeName, path string) (uint64, error) {
	t, mod, ok := m.find(typeName)
	if !ok {
		return 0, fmt.Errorf("type %q: not in vmlinux's BTF nor in the BTF of %d loaded modules: %w", typeName, len(m.mods), vmi.ErrNotFound)
	}
	var bitOff uint64
	for _, comp := range strings.Split(path, ".") {
		name, idxs, err := memberpath.SplitIndexes(comp)
		if err != nil {
			return 0, err
		}
		mem, off, ok := findMember(t, name, 0)
		if !ok {
			return 0, fmt.Errorf("no member %q in %s (BTF of module %s): %w", name, typeName, mod, vmi.ErrNotFound)
		}
		bitOff += off
		t = mem.Type
		for _, i := range idxs {
			arr, ok := btf.UnderlyingType(t).(*btf.Array)
			if !ok || uint64(i) >= uint64(arr.Nelems) {
				return 0, fmt.Errorf("index %d of %s in %s (BTF of module %s): %w", i, name, typeName, mod, vmi.ErrNotFound)
			}
			sz, err := btf.Sizeof(arr.Type)
			if err != nil {
				return 0, err
			}
			bitOff += i * uint64(sz) * 8
			t = arr.Type
		}
	}
	if bitOff%8 != 0 {
		return 0, fmt.Errorf("%s.%s is a bitfield: %w", typeName, path, vmi.ErrUnsupported)
	}
	return bitOff / 8, nil
}

// findMember finds name among t's members, looking into anonymous struct
// and union members as C does, and returns it with its bit offset.
func findMember(t btf.Type, name string, depth int) (btf.Member, uint64, bool) {
	if depth > 16 {
		return btf.Member{}, 0, false
	}
	var ms []btf.Member
	switch c := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		ms = c.Members
	case *btf.Union:
		ms = c.Members
	default:
		return btf.Member{}, 0, false
	}
	for _, m := range ms {
		if m.Name == name {
			return m, uint64(m.Offset), true
		}
		if m.Name == "" {
			if in, off, ok := findMember(m.Type, name, depth+1); ok {
				return in, uint64(m.Offset) + off, true
			}
		}
	}
	return btf.Member{}, 0, false
}

func (m *moduleTypes) sizeof(typeName string) (uint64, error) {
	t, _, ok := m.find(typeName)
	if !ok {
		return 0, fmt.Errorf("type %q: not in vmlinux's BTF nor in the BTF of %d loaded modules: %w", typeName, len(m.mods), vmi.ErrNotFound)
	}
	n, err := btf.Sizeof(t)
	return uint64(n), err
}

// typeMissing tells whether err says a type (not a member) is unknown, so
// that module BTF is worth asking.
func typeMissing(t TypeSource, typeName string, err error) bool {
	if !errors.Is(err, vmi.ErrNotFound) {
		return false
	}
	_, serr := t.Sizeof(typeName)
	return errors.Is(serr, vmi.ErrNotFound)
}

// withModuleError adds why module BTF could not be asked to a type-not-found
// error, when that is more than "there is none".
func withModuleError(err, moduleErr error) error {
	if errors.Is(moduleErr, vmi.ErrNotFound) {
		return err
	}
	return fmt.Errorf("%w (and module BTF could not be read: %v)", err, moduleErr)
}
