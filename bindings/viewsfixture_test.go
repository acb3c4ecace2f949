package bindings_test

import (
	"encoding/binary"

	"github.com/xascript/xascript/internal/fakeguest"
	"github.com/xascript/xascript/vmi/types"
)

// The synthetic struct layouts that testdata/views.lua reads, as a type
// graph (fakeguest's struct module: list @0x8, name @0x18), and the data
// behind them. Real layouts are tested on real images (views_real_test.go).

func member(name string, byteOff uint64, t *types.Type) types.Member {
	return types.Member{Name: name, BitOffset: byteOff * 8, Type: t}
}

func bitfield(name string, bitOff uint64, bits uint32, t *types.Type) types.Member {
	return types.Member{Name: name, BitOffset: bitOff, BitSize: bits, Type: t}
}

func fixtureTypes() *types.Set {
	s := types.NewSet("fixture types")
	ch := &types.Type{Kind: types.Int, Name: "char", Size: 1, Signed: true}
	u8 := &types.Type{Kind: types.Int, Name: "unsigned char", Size: 1}
	i32 := &types.Type{Kind: types.Int, Name: "int", Size: 4, Signed: true}
	u32 := &types.Type{Kind: types.Int, Name: "unsigned int", Size: 4}
	u64 := &types.Type{Kind: types.Int, Name: "long long unsigned int", Size: 8}
	s64 := &types.Type{Kind: types.Int, Name: "long long int", Size: 8, Signed: true}
	ul := &types.Type{Kind: types.Int, Name: "long unsigned int", Size: 8}
	boolT := &types.Type{Kind: types.Int, Name: "_Bool", Size: 1}
	void := &types.Type{Kind: types.Void}
	voidp := &types.Type{Kind: types.Pointer, Size: 8, Target: void}
	charp := &types.Type{Kind: types.Pointer, Size: 8, Target: ch}
	u64t := &types.Type{Kind: types.Typedef, Name: "u64", Size: 8, Target: u64}

	lh := &types.Type{Kind: types.Struct, Name: "list_head", Size: 16}
	lhp := &types.Type{Kind: types.Pointer, Size: 8, Target: lh}
	lh.Members = []types.Member{member("next", 0, lhp), member("prev", 8, lhp)}

	atomic := &types.Type{Kind: types.Struct, Name: "", Size: 4, Members: []types.Member{member("counter", 0, i32)}}
	atomicT := &types.Type{Kind: types.Typedef, Name: "atomic_t", Size: 4, Target: atomic}
	mm := &types.Type{Kind: types.Struct, Name: "module_memory", Size: 16,
		Members: []types.Member{member("base", 0, voidp), member("size", 8, u32)}}
	state := &types.Type{Kind: types.Enum, Name: "module_state", Size: 4,
		Enumerators: []types.Enumerator{{Name: "MODULE_STATE_LIVE", Value: 0}, {Name: "MODULE_STATE_COMING", Value: 1}}}
	memType := &types.Type{Kind: types.Enum, Name: "mod_mem_type", Size: 4,
		Enumerators: []types.Enumerator{{Name: "MOD_TEXT", Value: 0}, {Name: "MOD_DATA", Value: 1}}}
	mod := &types.Type{Kind: types.Struct, Name: "module", Size: 0xb0}
	modp := &types.Type{Kind: types.Pointer, Size: 8, Target: mod}
	mod.Members = []types.Member{
		member("state", 0, state),
		member("list", 8, lh),
		member("name", 0x18, &types.Type{Kind: types.Array, Size: 56, Target: ch, Len: 56}),
		member("refcnt", 0x50, atomicT),
		member("mem", 0x58, &types.Type{Kind: types.Array, Size: 32, Target: mm, Len: 2}),
		bitfield("small", 0x78*8, 3, u32),
		bitfield("neg", 0x78*8+3, 5, i32),
		bitfield("wide", 0x78*8+8, 20, u32),
		member("parent", 0x80, modp),
		member("core", 0x88, u64t),
		member("delta", 0x90, s64),
		member("live", 0x98, boolT),
		member("tag", 0xa0, charp),
		member("flags", 0xa8, ul),
	}
	// An rbtree of "knode"s (rb_node at 8) and an hlist of them (at 32).
	rb := &types.Type{Kind: types.Struct, Name: "rb_node", Size: 24}
	rbp := &types.Type{Kind: types.Pointer, Size: 8, Target: rb}
	rb.Members = []types.Member{member("__rb_parent_color", 0, ul), member("rb_right", 8, rbp), member("rb_left", 16, rbp)}
	hn := &types.Type{Kind: types.Struct, Name: "hlist_node", Size: 16}
	hnp := &types.Type{Kind: types.Pointer, Size: 8, Target: hn}
	hn.Members = []types.Member{member("next", 0, hnp), member("pprev", 8, &types.Type{Kind: types.Pointer, Size: 8, Target: hnp})}
	knode := &types.Type{Kind: types.Struct, Name: "knode", Size: 48,
		Members: []types.Member{member("key", 0, u32), member("rb", 8, rb), member("h", 32, hn)}}
	// XArray and IDR, with a 64-slot xa_node.
	xa := &types.Type{Kind: types.Struct, Name: "xarray", Size: 16,
		Members: []types.Member{member("xa_lock", 0, u32), member("xa_flags", 4, u32), member("xa_head", 8, voidp)}}
	xn := &types.Type{Kind: types.Struct, Name: "xa_node", Size: 0x28 + 64*8,
		Members: []types.Member{member("shift", 0, u8), member("offset", 1, u8),
			member("slots", 0x28, &types.Type{Kind: types.Array, Size: 64 * 8, Target: voidp, Len: 64})}}
	idr := &types.Type{Kind: types.Struct, Name: "idr", Size: 24,
		Members: []types.Member{member("idr_rt", 0, xa), member("idr_base", 16, u32), member("idr_next", 20, u32)}}
	// A maple tree (the node format is vmi/linux/maple's), and a task_struct
	// for its space() method; "knode" has no such method.
	mt := &types.Type{Kind: types.Struct, Name: "maple_tree", Size: 16,
		Members: []types.Member{member("ma_lock", 0, u32), member("ma_flags", 4, u32), member("ma_root", 8, voidp)}}
	task := &types.Type{Kind: types.Struct, Name: "task_struct", Size: 16,
		Members: []types.Member{member("pid", 0, i32), member("mt", 0, mt)}}
	for _, t := range []*types.Type{ch, u8, i32, u32, u64, s64, ul, boolT, u64t, lh, atomicT, mm, state, memType, mod, rb, hn, knode, xa, xn, idr, mt, task} {
		s.Add(t)
	}
	return s
}

// addViewData writes what views.lua reads: the members of the first
// module of fakeguest's list, an rbtree and hlist of knodes, an IDR.
func addViewData(g *fakeguest.Guest, mods []uint64) {
	u32 := func(va uint64, v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		g.Write(va, b[:])
	}
	m := mods[0]
	u32(m+0x00, 1) // MODULE_STATE_COMING
	u32(m+0x50, 3) // refcnt
	g.WritePtr(m+0x58, v+0xc0de000)
	u32(m+0x58+8, 0x4000)
	g.WritePtr(m+0x68, v+0xda7a000)
	u32(m+0x68+8, 0x1000)
	// small=5 (bits 0-2), neg=-3 (bits 3-7: 0b11101), wide=0xabcde.
	g.Write(m+0x78, []byte{5 | 0x1d<<3, 0xde, 0xbc, 0x0a})
	g.WritePtr(m+0x80, mods[1])                    // parent: another module
	g.WritePtr(m+0x88, 0xffffffffc0a1b000)         // core: a u64 above 2^53
	g.WritePtr(m+0x90, uint64(0xfffffffffffffff6)) // delta: -10
	g.Write(m+0x98, []byte{1})
	g.WritePtr(m+0xa0, v+0x1ffc) // tag: "abc"
	g.WritePtr(m+0xa8, 0x10)
	g.WritePtr(mods[1]+0x80, 0)   // the second module's parent is NULL
	u32(mods[1]+0x50, 0xffffffff) // and its refcnt -1

	// knodes with keys 30, 10, 20 at kbase+i*0x100; tree 20(10, 30); hlist
	// 30 -> 10 -> 20.
	const kbase uint64 = v + 0x70000
	node := func(key uint32) uint64 { return kbase + uint64(key)*0x10 }
	for _, k := range []uint32{10, 20, 30} {
		g.Write(node(k), make([]byte, 48))
		u32(node(k), k)
	}
	g.Syms["ktree"] = kbase + 0x800
	g.WritePtr(kbase+0x800, node(20)+8)
	g.WritePtr(node(20)+8+16, node(10)+8) // left
	g.WritePtr(node(20)+8+8, node(30)+8)  // right
	g.Syms["khash"] = kbase + 0x810
	g.WritePtr(kbase+0x810, node(30)+32)
	g.WritePtr(node(30)+32, node(10)+32)
	g.WritePtr(node(10)+32, node(20)+32)
	g.WritePtr(node(20)+32, 0)
	// khash_loop: 30 -> 10 -> 30.
	g.Syms["khash_loop"] = kbase + 0x820
	g.WritePtr(kbase+0x820, node(30)+32+0x400)
	g.WritePtr(node(30)+32+0x400, node(10)+32+0x400)
	g.WritePtr(node(10)+32+0x400, node(30)+32+0x400)
	// An IDR based at 1 holding knodes at ids 1+2 and 1+64*1+5, through
	// one top node (shift 6) and two leaves.
	const xbase uint64 = v + 0x80000
	g.Syms["kidr"] = xbase
	g.Write(xbase, make([]byte, 24))
	u32(xbase+16, 1)
	top, leaf0, leaf1 := xbase+0x1000, xbase+0x2000, xbase+0x3000
	for _, n := range []uint64{top, leaf0, leaf1} {
		g.Write(n, make([]byte, 0x28+64*8))
	}
	g.Write(top, []byte{6})
	g.WritePtr(xbase+8, top|2)
	g.WritePtr(top+0x28, leaf0|2)
	g.WritePtr(top+0x28+8, leaf1|2)
	g.WritePtr(leaf0+0x28+2*8, node(10))
	g.WritePtr(leaf1+0x28+5*8, node(30))
	g.WritePtr(leaf1+0x28+6*8, 5<<2|2) // a sibling entry: not an entry

	// Maple trees (64-bit node layout, written out literally: pivot[15]
	// @8, slot[16] @128, meta.end @248; encoded node = address | type<<3 |
	// 4, the root's | 2). "kmaple": a range64 root over two leaves holding
	// knode 10 at 0x1000-0x1fff, 20 at 0x2000-0x2fff and 30 at
	// 0x3000-0x3fff, a NULL range and XA_ZERO_ENTRY (skipped) between.
	const mbase uint64 = v + 0x90000
	mnode := func(at uint64, typ int, pivots, slots []uint64, end byte) uint64 {
		b := make([]byte, 256)
		for i, p := range pivots {
			binary.LittleEndian.PutUint64(b[8+8*i:], p)
		}
		for i, sl := range slots {
			binary.LittleEndian.PutUint64(b[128+8*i:], sl)
		}
		b[248] = end
		g.Write(at, b)
		return at | uint64(typ)<<3 | 4
	}
	l1 := mnode(mbase+0x100, 1, []uint64{0xfff, 0x1fff}, []uint64{0, node(10), node(20)}, 2)
	l2 := mnode(mbase+0x200, 1, []uint64{0x3fff, 0x4fff}, []uint64{node(30), 257<<2 | 2, 0}, 2)
	root := mnode(mbase+0x300, 2, []uint64{0x2fff}, []uint64{l1, l2}, 1)
	tree := func(name string, at, root uint64) {
		g.Syms[name] = at
		g.Write(at, make([]byte, 16))
		g.WritePtr(at+8, root)
	}
	tree("kmaple", mbase, root|2)
	// "kmaple_loop": a root whose child is the root itself.
	self := mbase + 0x400
	tree("kmaple_loop", mbase+0x20, mnode(self, 2, []uint64{0xfff}, []uint64{self | 2<<3 | 4, l2}, 1)|2)
	// "kmaple_bogus": a child of node type 7, which does not exist.
	tree("kmaple_bogus", mbase+0x40, mnode(mbase+0x500, 2, []uint64{0x2fff}, []uint64{l1, mbase + 0x600 | 7<<3 | 4}, 1)|2)
	// A task_struct, pid 7.
	g.Syms["ktask"] = mbase + 0x800
	u32(mbase+0x800, 7)
	g.Graph = fixtureTypes()
}
