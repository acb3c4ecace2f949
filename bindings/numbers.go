package bindings

import (
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// numberBox turns numbers into Lua values without one heap allocation per
// number. Storing a float64 in an interface (lua.LValue) allocates 8 bytes;
// on a read_u32 hot path that allocation and the GC work after it cost more
// than the read itself. Like gopher-lua's own VM allocator, the box hands
// out slots of a block of float64s and builds the interface to point at the
// slot; a block is collected once no value points into it.
type numberBox struct {
	block   []float64
	scratch lua.LValue
}

const numberBlock = 4096

// small holds the boxed integers 0..255, which are shared.
var small [256]lua.LValue

func init() {
	for i := range small {
		small[i] = lua.LNumber(i)
	}
}

// eface is the layout of a Go interface value.
type eface struct {
	typ  unsafe.Pointer
	word unsafe.Pointer
}

func (b *numberBox) value(v uint32) lua.LValue {
	if v < uint32(len(small)) {
		return small[v]
	}
	if len(b.block) == cap(b.block) {
		b.block = make([]float64, 0, numberBlock)
		if b.scratch == nil {
			b.scratch = lua.LNumber(0)
		}
	}
	b.block = append(b.block, float64(v))
	(*eface)(unsafe.Pointer(&b.scratch)).word = unsafe.Pointer(&b.block[len(b.block)-1])
	return b.scratch
}
