package linux

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/btfsrc"
	"github.com/xascript/xascript/vmi/linux/symbols"
	"github.com/xascript/xascript/vmi/paging"
)

// Options names the profile sources.
type Options struct {
	// SymbolsPath is a System.map or /proc/kallsyms file (compressed or not).
	SymbolsPath string
	// BTFPath is a vmlinuz, a vmlinux ELF or a raw BTF blob.
	BTFPath string
	// Unpack controls the decompression cache.
	Unpack unpack.Options
}

// ErrNoSymbols is returned when no symbol source was given.
var ErrNoSymbols = errors.New("no kernel symbols: give --symbols FILE (a System.map or a copy of the guest's /proc/kallsyms)")

// ErrNoTypes is returned by type queries when no BTF source was given.
var ErrNoTypes = errors.New("no struct layouts: give --btf FILE (the guest's vmlinuz, a vmlinux or a raw BTF blob)")

// Kernel is a located Linux kernel in a target. It implements the Guest
// interface of package bindings.
type Kernel struct {
	Target vmi.Target
	Space  *paging.Space
	Syms   *symbols.Table
	Layout Layout

	btfPath   string
	unpackOpt unpack.Options
	typesOnce sync.Once
	types     *btfsrc.Types
	typesErr  error
}

// Open locates the kernel in t using the profile sources in opt. Struct
// layouts are loaded on first use, so a script that needs none pays nothing.
func Open(t vmi.Target, opt Options) (*Kernel, error) {
	if opt.SymbolsPath == "" {
		return nil, ErrNoSymbols
	}
	syms, err := symbols.Load(opt.SymbolsPath, opt.Unpack)
	if err != nil {
		return nil, fmt.Errorf("load symbols: %w", err)
	}
	layout, space, err := Locate(t, syms)
	if err != nil {
		return nil, err
	}
	return &Kernel{Target: t, Space: space, Syms: syms, Layout: layout, btfPath: opt.BTFPath, unpackOpt: opt.Unpack}, nil
}

// ReadVirt reads kernel virtual memory.
func (k *Kernel) ReadVirt(buf []byte, va uint64) error { return k.Space.Read(buf, va) }

// ReadUintVirt reads a little-endian integer of 1, 2, 4 or 8 bytes.
func (k *Kernel) ReadUintVirt(va uint64, size int) (uint64, error) { return k.Space.ReadUint(va, size) }

// ReadPhys reads guest-physical memory.
func (k *Kernel) ReadPhys(buf []byte, pa uint64) error { return k.Target.ReadPhys(buf, pa) }

// Translate maps a kernel virtual address to a physical one.
func (k *Kernel) Translate(va uint64) (uint64, error) { return k.Space.Translate(va) }

// PointerSize is 8 for x86-64 guests and 4 for i386.
func (k *Kernel) PointerSize() int { return k.Layout.Mode.PointerSize() }

// Symbol returns a symbol's run-time address.
func (k *Kernel) Symbol(name string) (uint64, error) {
	a, ok := k.Syms.Lookup(name)
	if !ok {
		return 0, fmt.Errorf("symbol %q: not in the symbol table (%d symbols): %w", name, k.Syms.Len(), vmi.ErrNotFound)
	}
	return a + uint64(k.Layout.SymbolShift), nil
}

// Flush drops cached translations (after the guest ran).
func (k *Kernel) Flush() { k.Space.Flush() }

// Describe says how the kernel was found, for guest_info() and `xascript info`.
func (k *Kernel) Describe() vmi.KernelInfo {
	l := k.Layout
	return vmi.KernelInfo{
		Target: k.Target.Kind(), Paging: l.Mode.String(), Root: l.Root, RootSource: l.RootSource,
		Banner: l.Banner, TextPhys: l.TextPhys, KASLRVirtual: l.KASLRVirtual, KASLRPhysical: l.KASLRPhysical,
		SymbolShift: l.SymbolShift, Symbols: k.Syms.Len(), Notes: l.Notes,
	}
}

// Types returns the struct layouts, loading them on first use.
func (k *Kernel) Types() (*btfsrc.Types, error) {
	k.typesOnce.Do(func() {
		if k.btfPath == "" {
			k.typesErr = ErrNoTypes
			return
		}
		k.types, k.typesErr = btfsrc.Load(k.btfPath, k.unpackOpt)
		if k.typesErr != nil {
			k.typesErr = fmt.Errorf("load BTF: %w", k.typesErr)
		}
	})
	return k.types, k.typesErr
}

// Offsetof returns a member's offset in a struct.
func (k *Kernel) Offsetof(structName, member string) (uint64, error) {
	t, err := k.Types()
	if err != nil {
		return 0, err
	}
	return t.Offsetof(structName, member)
}

// Sizeof returns a type's size.
func (k *Kernel) Sizeof(typeName string) (uint64, error) {
	t, err := k.Types()
	if err != nil {
		return 0, err
	}
	return t.Sizeof(strings.TrimSpace(typeName))
}
