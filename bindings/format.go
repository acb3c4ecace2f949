package bindings

import (
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// registerFormat replaces string.format with one that knows addresses.
// gopher-lua's string.format hands its arguments to Go's fmt.Sprintf as
// they are, so an address (a userdata) printed as `userdata: 0x…` with %s
// and as garbage with %x. This one gives each argument that has a
// __tostring metamethod a fmt.Formatter: %s (%q, %v) prints what tostring
// prints, and for an address the integer verbs (%x, %X, %d, %o) print its 64
// bits with the flags and width given. Everything else is formatted as
// before (the method form ("%x"):format(a) goes through the same table).
func registerFormat(L *lua.LState) {
	str, ok := L.GetGlobal("string").(*lua.LTable)
	if !ok {
		return
	}
	L.SetField(str, "format", L.NewFunction(stringFormat))
}

func stringFormat(L *lua.LState) int {
	format := L.CheckString(1)
	top := L.GetTop()
	args := make([]any, 0, top-1)
	for i := 2; i <= top; i++ {
		v := L.Get(i)
		switch x := v.(type) {
		case *lua.LUserData:
			if a, ok := x.Value.(Address); ok {
				args = append(args, addressArg(a))
				continue
			}
		case lua.LNumber, lua.LString, lua.LBool, *lua.LNilType:
			args = append(args, v)
			continue
		}
		if L.GetMetaField(v, "__tostring") != lua.LNil {
			args = append(args, tostringArg{v: v, s: L.ToStringMeta(v).String()})
			continue
		}
		args = append(args, v)
	}
	// As gopher-lua's own: extra arguments are ignored, not printed as
	// %!(EXTRA …).
	n := strings.Count(format, "%") - 2*strings.Count(format, "%%")
	L.Push(lua.LString(fmt.Sprintf(format, args[:max(0, min(n, len(args)))]...)))
	return 1
}

// addressArg formats an address: integer verbs print the number, the others
// its 0x… text.
type addressArg Address

func (a addressArg) Format(f fmt.State, verb rune) {
	switch verb {
	case 'x', 'X', 'd', 'o', 'b':
		fmt.Fprintf(f, fmt.FormatString(f, verb), uint64(a))
	default:
		fmt.Fprintf(f, fmt.FormatString(f, verb), formatAddress(uint64(a)))
	}
}

// tostringArg is a value with a __tostring metamethod: the string verbs
// print what tostring gives.
type tostringArg struct {
	v lua.LValue
	s string
}

func (t tostringArg) Format(f fmt.State, verb rune) {
	switch verb {
	case 's', 'q', 'v':
		fmt.Fprintf(f, fmt.FormatString(f, verb), t.s)
	default:
		fmt.Fprintf(f, fmt.FormatString(f, verb), t.v)
	}
}
