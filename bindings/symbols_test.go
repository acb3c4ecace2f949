package bindings

import (
	"fmt"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/xascript/xascript/vmi"
)

// namerGuest answers SymbolAt from a fixed list (the real lookups are
// tested on real kernels in vmi/linux and integration).
type namerGuest struct {
	Guest
	infos map[uint64]vmi.SymbolInfo
}

func (g namerGuest) SymbolAt(a uint64) (vmi.SymbolInfo, error) {
	if i, ok := g.infos[a]; ok {
		return i, nil
	}
	return vmi.SymbolInfo{}, fmt.Errorf("address %#x: outside the kernel image: %w", a, vmi.ErrNotFound)
}

// symbol_at's two results: the kernel's %pS spelling, and a table with the
// declared fields of the declared types (optional ones absent for a kernel
// symbol without a type letter).
func TestSymbolAtResults(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	Register(L, &Env{Guest: namerGuest{infos: map[uint64]vmi.SymbolInfo{
		0x1010: {Name: "dummy_dev_init", Module: "dummy", Addr: 0x1000, Offset: 0x10, Type: 't', Text: true},
		0x2000: {Name: "jiffies", Addr: 0x2000, Type: 'D'},
		0x3000: {Name: "far", Addr: 0, Offset: 1 << 60},
	}}})
	c := classByName(t, "xascript.symbol_info")
	for _, tc := range []struct {
		addr uint64
		want string
		full bool
	}{{0x1010, "dummy_dev_init+0x10 [dummy]", true}, {0x2000, "jiffies+0x0", false}, {0x3000, "far+0x1000000000000000", false}} {
		if err := L.DoString(fmt.Sprintf("s, info = symbol_at(%d)", tc.addr)); err != nil {
			t.Fatal(err)
		}
		if s := L.GetGlobal("s"); s.String() != tc.want {
			t.Errorf("symbol_at(%#x) = %v, want %q", tc.addr, s, tc.want)
		}
		info := L.GetGlobal("info")
		if tc.addr != 0x3000 {
			checkTable(t, c, info, tc.full)
		} else if off := L.GetField(info, "offset"); off.Type() != lua.LTUserData {
			t.Errorf("an offset of 2^60 is %s %v, want an address", off.Type(), off)
		}
	}
	if err := L.DoString(`a, b = symbol_at(0x4000)`); err != nil {
		t.Fatal(err)
	}
	if a, b := L.GetGlobal("a"), L.GetGlobal("b"); a != lua.LNil || b.String() != "address 0x4000: outside the kernel image: "+vmi.ErrNotFound.Error() {
		t.Errorf("symbol_at of an unknown address = %v, %v", a, b)
	}
}
