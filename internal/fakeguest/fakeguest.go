// Package fakeguest is a synthetic guest for unit tests of the Lua API: a
// sparse memory where virtual address = physical address + VirtOffset, a
// symbol table and a struct-layout table. It is for edge cases (cycles,
// faults, bounds); behaviour on real kernels is tested on real images.
package fakeguest

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/types"
)

// VirtOffset maps the fake kernel's virtual addresses onto physical ones,
// like the kernel's direct map.
const VirtOffset = 0xffff_8880_0000_0000

// Guest implements bindings.Guest over sparse pages.
type Guest struct {
	Pages   map[uint64][]byte // physical page number -> 4 KiB
	Syms    map[string]uint64
	Offsets map[string]uint64 // "struct.member" -> offset
	Sizes   map[string]uint64
	PtrSize int
	// ReadOnly, when set, is what Writable and every WriteVirt/WritePhys
	// return: a target opened read-only.
	ReadOnly error
	// Graph is the type graph typed views use (nil: Types fails, as for a
	// kernel without type information).
	Graph types.Graph
}

// Types returns Graph.
func (g *Guest) Types() (types.Graph, error) {
	if g.Graph == nil {
		return nil, fmt.Errorf("fake guest has no type graph: %w", vmi.ErrNotFound)
	}
	return g.Graph, nil
}

// New returns an empty 64-bit guest.
func New() *Guest {
	return &Guest{Pages: map[uint64][]byte{}, Syms: map[string]uint64{}, Offsets: map[string]uint64{}, Sizes: map[string]uint64{}, PtrSize: 8}
}

// Write stores data at virtual address va, creating pages as needed.
func (g *Guest) Write(va uint64, data []byte) {
	pa := va - VirtOffset
	for len(data) > 0 {
		page, off := pa>>12, pa&0xfff
		p, ok := g.Pages[page]
		if !ok {
			p = make([]byte, 4096)
			g.Pages[page] = p
		}
		n := copy(p[off:], data)
		data, pa = data[n:], pa+uint64(n)
	}
}

// WritePtr stores a pointer-sized value at va.
func (g *Guest) WritePtr(va, v uint64) {
	b := make([]byte, g.PtrSize)
	if g.PtrSize == 4 {
		binary.LittleEndian.PutUint32(b, uint32(v))
	} else {
		binary.LittleEndian.PutUint64(b, v)
	}
	g.Write(va, b)
}

func (g *Guest) ReadPhys(buf []byte, pa uint64) error {
	for done := 0; done < len(buf); {
		a := pa + uint64(done)
		p, ok := g.Pages[a>>12]
		if !ok {
			return &vmi.PhysError{Addr: a, Err: vmi.ErrNotPresent}
		}
		done += copy(buf[done:], p[a&0xfff:])
	}
	return nil
}

func (g *Guest) Translate(va uint64) (uint64, error) {
	if va < VirtOffset {
		return 0, fmt.Errorf("translate %#x: %w", va, vmi.ErrNotPresent)
	}
	pa := va - VirtOffset
	if _, ok := g.Pages[pa>>12]; !ok {
		return 0, fmt.Errorf("translate %#x: page not present: %w", va, vmi.ErrNotPresent)
	}
	return pa, nil
}

func (g *Guest) ReadVirt(buf []byte, va uint64) error {
	for done := 0; done < len(buf); {
		a := va + uint64(done)
		pa, err := g.Translate(a)
		if err != nil {
			return err
		}
		n := min(len(buf)-done, int(0x1000-a&0xfff))
		if err := g.ReadPhys(buf[done:done+n], pa); err != nil {
			return err
		}
		done += n
	}
	return nil
}

func (g *Guest) ReadUintVirt(va uint64, size int) (uint64, error) {
	var b [8]byte
	if err := g.ReadVirt(b[:size], va); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func (g *Guest) PointerSize() int { return g.PtrSize }

func (g *Guest) Symbol(name string) (uint64, error) {
	if a, ok := g.Syms[name]; ok {
		return a, nil
	}
	return 0, fmt.Errorf("symbol %q: %w", name, vmi.ErrNotFound)
}

func (g *Guest) Offsetof(s, member string) (uint64, error) {
	s = strings.TrimPrefix(s, "struct ")
	if o, ok := g.Offsets[s+"."+member]; ok {
		return o, nil
	}
	return 0, fmt.Errorf("no member %q in struct %s: %w", member, s, vmi.ErrNotFound)
}

func (g *Guest) Sizeof(t string) (uint64, error) {
	t = strings.TrimPrefix(t, "struct ")
	if n, ok := g.Sizes[t]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("type %q: %w", t, vmi.ErrNotFound)
}

// ModuleList lays out a kernel-style circular module list at head with the
// given names; struct module is {list_head list @0x8; char name[56] @0x18}.
// It returns the entries' addresses.
func (g *Guest) ModuleList(head uint64, names []string) []uint64 {
	g.Offsets["module.list"] = 0x8
	g.Offsets["module.name"] = 0x18
	g.Offsets["list_head.next"] = 0
	g.Offsets["list_head.prev"] = uint64(g.PtrSize)
	g.Sizes["module"] = 0x18 + 56
	g.Sizes["list_head"] = uint64(2 * g.PtrSize)
	g.Syms["modules"] = head
	var nodes []uint64
	for i, n := range names {
		m := head + 0x10000 + uint64(i)*0x1000 + 0x123
		name := make([]byte, 56)
		copy(name, n)
		g.Write(m+0x18, name)
		nodes = append(nodes, m+0x8)
	}
	prev := head
	for _, node := range nodes {
		g.WritePtr(prev, node)
		g.WritePtr(node+uint64(g.PtrSize), prev)
		prev = node
	}
	g.WritePtr(prev, head)
	g.WritePtr(head+uint64(g.PtrSize), prev)
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i] = n - 0x8
	}
	return out
}

// Writable is nil unless ReadOnly is set (bindings.GuestWriter).
func (g *Guest) Writable() error { return g.ReadOnly }

// WritePhys stores buf at pa, like a writable target: every page must
// exist, and a write that would fault stores nothing.
func (g *Guest) WritePhys(buf []byte, pa uint64) error {
	if g.ReadOnly != nil {
		return g.ReadOnly
	}
	for a := pa &^ 0xfff; a < pa+uint64(len(buf)); a += 0x1000 {
		if _, ok := g.Pages[a>>12]; !ok {
			return &vmi.PhysError{Addr: max(a, pa), Err: vmi.ErrNotPresent}
		}
	}
	g.Write(pa+VirtOffset, buf)
	return nil
}

// WriteVirt stores buf at va, translating every page first.
func (g *Guest) WriteVirt(buf []byte, va uint64) error {
	if g.ReadOnly != nil {
		return g.ReadOnly
	}
	for a := va &^ 0xfff; a < va+uint64(len(buf)); a += 0x1000 {
		if _, err := g.Translate(max(a, va)); err != nil {
			return err
		}
	}
	g.Write(va, buf)
	return nil
}
