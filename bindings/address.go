package bindings

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Address is a 64-bit guest value (a virtual or physical address, or any u64)
// as Lua sees it: a userdata with arithmetic (+ and - wrap modulo 2^64),
// comparison (==, <, <= between addresses) and hex tostring.
type Address uint64

const addressTypeName = "address"

// maxExact is the largest integer a float64 holds exactly.
const maxExact = 1 << 53

func addressArea(env *Env) Area {
	return Area{
		Name:  "address",
		Title: "Addresses and 64-bit values",
		Doc: "Kernel addresses do not fit in Lua numbers (float64), so they are values of type `address`. " +
			"`a + n`, `a - n` and `a - b` give addresses (wrapping modulo 2^64); `==`, `<`, `<=` compare two addresses " +
			"(compare an address with a number by converting one side: `a == addr(n)`); `tostring(a)` and `a .. \"\"` give `0x…` hex. " +
			"Methods: `a:hex()`, `a:tonumber()` (errors above 2^53), `a:band(m)`, `a:bor(m)`, `a:bxor(m)`, `a:shl(n)`, `a:shr(n)` " +
			"(shifts by 64 or more give 0), `a:key()`, `a:as(type)` (a typed view of the struct at `a`: see `view`). " +
			"Every function that takes an address also accepts an exact integer below 2^53 or a hex string.\n\n" +
			"**Table keys.** Two address values that are equal are still two values, and Lua tables compare keys by " +
			"identity: `t[addr(1)] = 1` then `t[addr(1)]` is nil. Index tables by `a:key()` (a string, `\"0x…\"`; " +
			"`addr(k)` turns it back into an address).\n\n" +
			"**Formatting.** `string.format` (and `(\"…\"):format`) accepts addresses: `%s` prints them as `tostring` does " +
			"(any value with a `__tostring` does too), and `%x`, `%X`, `%d`, `%o` print all 64 bits, with the usual " +
			"flags and width (`%016x`, `%#x`).\n\n" +
			"**Hex literals.** Lua 5.1 numbers are doubles: a hex literal above 2^53 (`0x20000000000001`) silently loses " +
			"its low bits, and one above 2^63 (`0xfffffffffffff000`, every kernel address) becomes NaN. Write 64-bit constants as strings: `addr(\"0xfffffffffffff000\")` (the " +
			"functions that take an address take the string too), and mask with `a:band(\"0xfffffffffffff000\")`.",
		Bindings: []Binding{
			{Name: "addr", Signature: "addr(x) -> address",
				Doc: "Converts `x` (a number below 2^53, a decimal or `0x` hex string, or an address) to an address. Raises an error when `x` is not one.",
				Fn:  func(L *lua.LState) int { pushAddress(L, env, checkAddress(L, 1)); return 1 }},
			{Name: "is_address", Signature: "is_address(x) -> boolean",
				Doc: "Tells whether `x` is an address value (a view is not one, though it is accepted wherever an address is).",
				Fn: func(L *lua.LState) int {
					ud, ok := L.Get(1).(*lua.LUserData)
					if ok {
						_, ok = ud.Value.(Address)
					}
					L.Push(lua.LBool(ok))
					return 1
				}},
		},
	}
}

// newAddressMetatable builds the metatable shared by all address values.
func newAddressMetatable(L *lua.LState, env *Env) *lua.LTable {
	mt := L.NewTypeMetatable(addressTypeName)
	methods := L.NewTable()
	binop := func(name string, op func(a, b uint64) uint64) {
		L.SetField(methods, name, L.NewFunction(func(L *lua.LState) int {
			pushAddress(L, env, op(checkAddress(L, 1), checkAddress(L, 2)))
			return 1
		}))
	}
	binop("band", func(a, b uint64) uint64 { return a & b })
	binop("bor", func(a, b uint64) uint64 { return a | b })
	binop("bxor", func(a, b uint64) uint64 { return a ^ b })
	// Go shifts by 64 or more give 0, as the arithmetic means (C leaves
	// them undefined; masking the count, as x86 does, gave addr(1):shl(64)
	// == 1).
	binop("shl", func(a, b uint64) uint64 { return a << b })
	binop("shr", func(a, b uint64) uint64 { return a >> b })
	L.SetField(methods, "key", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(formatAddress(checkAddress(L, 1))))
		return 1
	}))
	L.SetField(methods, "as", L.NewFunction(func(L *lua.LState) int {
		return newViewAt(L, env, L.CheckString(2), checkAddress(L, 1))
	}))
	L.SetField(methods, "hex", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(formatAddress(checkAddress(L, 1))))
		return 1
	}))
	L.SetField(methods, "tonumber", L.NewFunction(func(L *lua.LState) int {
		v := checkAddress(L, 1)
		if v >= maxExact {
			L.RaiseError("address %s does not fit in a Lua number (2^53)", formatAddress(v))
		}
		L.Push(lua.LNumber(v))
		return 1
	}))
	L.SetField(mt, "__index", methods)
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(formatAddress(checkAddress(L, 1))))
		return 1
	}))
	L.SetField(mt, "__concat", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(concatPart(L, 1) + concatPart(L, 2)))
		return 1
	}))
	L.SetField(mt, "__add", L.NewFunction(func(L *lua.LState) int {
		pushAddress(L, env, arithOperand(L, 1, "add")+arithOperand(L, 2, "add"))
		return 1
	}))
	L.SetField(mt, "__sub", L.NewFunction(func(L *lua.LState) int {
		pushAddress(L, env, arithOperand(L, 1, "subtract")-arithOperand(L, 2, "subtract"))
		return 1
	}))
	L.SetField(mt, "__eq", L.NewFunction(func(L *lua.LState) int {
		a, _ := toAddress(L.Get(1))
		b, _ := toAddress(L.Get(2))
		L.Push(lua.LBool(a == b))
		return 1
	}))
	L.SetField(mt, "__lt", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LBool(checkAddress(L, 1) < checkAddress(L, 2)))
		return 1
	}))
	L.SetField(mt, "__le", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LBool(checkAddress(L, 1) <= checkAddress(L, 2)))
		return 1
	}))
	return mt
}

func registerAddressType(L *lua.LState, env *Env) {
	env.addressMT = newAddressMetatable(L, env)
}

// pushAddress pushes v as an address value.
func pushAddress(L *lua.LState, env *Env, v uint64) {
	L.Push(newAddress(L, env, v))
}

func newAddress(L *lua.LState, env *Env, v uint64) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = Address(v)
	ud.Metatable = env.addressMT
	return ud
}

// toAddress converts a Lua value to an address without raising.
func toAddress(v lua.LValue) (uint64, bool) {
	switch x := v.(type) {
	case *lua.LUserData:
		switch a := x.Value.(type) {
		case Address:
			return uint64(a), true
		case *view: // a view is the address of what it views
			return a.addr, true
		}
		return 0, false
	case lua.LNumber:
		f := float64(x)
		if f < 0 || f >= maxExact || f != math.Trunc(f) {
			return 0, false
		}
		return uint64(f), true
	case lua.LString:
		return parseAddress(string(x))
	}
	return 0, false
}

func parseAddress(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	var v uint64
	var err error
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		v, err = strconv.ParseUint(rest, 16, 64)
	} else {
		v, err = strconv.ParseUint(s, 10, 64)
	}
	return v, err == nil
}

// checkAddress reads argument n as an address or raises an argument error.
func checkAddress(L *lua.LState, n int) uint64 {
	v := L.Get(n)
	if ud, ok := v.(*lua.LUserData); ok {
		if a, ok := ud.Value.(Address); ok {
			return uint64(a)
		}
	}
	a, ok := toAddress(v)
	if !ok {
		L.ArgError(n, describeNotAddress(v))
	}
	return a
}

func describeNotAddress(v lua.LValue) string {
	switch v.Type() {
	case lua.LTNumber:
		return fmt.Sprintf("address expected, got number %v (not an exact integer in [0, 2^53): use an address value or a hex string)", v)
	case lua.LTString:
		return fmt.Sprintf("address expected, got string %q", string(v.(lua.LString)))
	case lua.LTNil:
		return "address expected, got nil (did an earlier call return nil, err?)"
	}
	return "address expected, got " + v.Type().String()
}

// arithOperand reads an operand of + or -: an address or an integer number.
// Negative integers are allowed (a + -8), wrapping like C pointer arithmetic.
func arithOperand(L *lua.LState, n int, op string) uint64 {
	v := L.Get(n)
	if num, ok := v.(lua.LNumber); ok {
		f := float64(num)
		if f != math.Trunc(f) || f <= -maxExact || f >= maxExact {
			L.RaiseError("cannot %s %v and an address: not an exact integer", op, v)
		}
		return uint64(int64(f))
	}
	a, ok := toAddress(v)
	if !ok || v.Type() == lua.LTString {
		L.RaiseError("cannot %s an address and %s (did an earlier call return nil, err?)", op, v.Type())
	}
	return a
}

func concatPart(L *lua.LState, n int) string {
	v := L.Get(n)
	switch x := v.(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return x.String()
	}
	if a, ok := toAddress(v); ok && v.Type() == lua.LTUserData {
		return formatAddress(a)
	}
	L.RaiseError("cannot concatenate an address and %s", v.Type())
	return ""
}

func formatAddress(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }
