package bindings

import (
	"math"

	lua "github.com/yuin/gopher-lua"
)

// The bit library works on 64 bits. Lua 5.1 has no bitwise operators and its
// numbers are doubles, so bit arithmetic on kernel values (flags, masks,
// page-table entries, pointers) needs functions, and results above 2^53 must
// come back as addresses (address.go) or they would be rounded.

func bitArea(env *Env) Area {
	const args = "Each argument is an address, an integer number (a negative one stands for its 64-bit two's " +
		"complement: `-4096` is `0xfffffffffffff000`) or a hex string. "
	const result = "The result is an address when an argument is an address or the result is 2^53 or more, " +
		"else a number. "
	return Area{
		Name:  "bit",
		Title: "Bit operations",
		Doc: "The global table `bit` holds bitwise operations over 64-bit values. " + args + result +
			"Address values also have the methods `a:band(m)`, `a:bor(m)`, `a:bxor(m)`, `a:shl(n)`, `a:shr(n)`, " +
			"which always give addresses.",
		Bindings: []Binding{
			{Name: "bit.band", Signature: "bit.band(x, y, ...) -> number|address",
				Doc: "Bitwise and of all its arguments (at least one).", Fn: bitFold(env, func(a, b uint64) uint64 { return a & b })},
			{Name: "bit.bor", Signature: "bit.bor(x, y, ...) -> number|address",
				Doc: "Bitwise or of all its arguments (at least one).", Fn: bitFold(env, func(a, b uint64) uint64 { return a | b })},
			{Name: "bit.bxor", Signature: "bit.bxor(x, y, ...) -> number|address",
				Doc: "Bitwise exclusive or of all its arguments (at least one).", Fn: bitFold(env, func(a, b uint64) uint64 { return a ^ b })},
			{Name: "bit.bnot", Signature: "bit.bnot(x) -> number|address",
				Doc: "Every bit of the 64-bit `x` flipped: `bit.bnot(0)` is the address `0xffffffffffffffff`, " +
					"`bit.band(a, bit.bnot(0xfff))` clears the low 12 bits.",
				Fn: func(L *lua.LState) int {
					v, isAddr := bitArg(L, 1)
					pushBitResult(L, env, ^v, isAddr)
					return 1
				}},
			{Name: "bit.shl", Signature: "bit.shl(x, n) -> number|address",
				Doc: "`x` shifted left by `n` bits (a whole number from 0; 64 or more gives 0); the bits shifted past " +
					"bit 63 are lost.",
				Fn: bitShift(env, func(v uint64, n uint64) uint64 { return v << n })},
			{Name: "bit.shr", Signature: "bit.shr(x, n) -> number|address",
				Doc: "`x` shifted right by `n` bits, zeros coming in at the top (a logical shift; `n` of 64 or more gives 0).",
				Fn:  bitShift(env, func(v uint64, n uint64) uint64 { return v >> n })},
			{Name: "bit.arshift", Signature: "bit.arshift(x, n) -> number|address",
				Doc: "`x` shifted right by `n` bits as a signed 64-bit value: bit 63 is copied in at the top " +
					"(`n` of 64 or more gives 0 or all ones, by the sign).",
				Fn: bitShift(env, func(v uint64, n uint64) uint64 { return uint64(int64(v) >> min(n, 63)) })},
			{Name: "bit.test", Signature: "bit.test(x, mask) -> boolean",
				Doc: "Tells whether `x` and `mask` have a bit in common (`bit.band(x, mask) ~= 0`, which as a " +
					"comparison of an address and a number would always be true).",
				Fn: func(L *lua.LState) int {
					a, _ := bitArg(L, 1)
					b, _ := bitArg(L, 2)
					L.Push(lua.LBool(a&b != 0))
					return 1
				}},
		},
	}
}

// bitArg reads argument n as 64 bits, and whether it was an address value.
func bitArg(L *lua.LState, n int) (uint64, bool) {
	v := L.Get(n)
	switch x := v.(type) {
	case *lua.LUserData:
		if a, ok := x.Value.(Address); ok {
			return uint64(a), true
		}
	case lua.LNumber:
		f := float64(x)
		if f == math.Trunc(f) && f > -maxExact && f < maxExact {
			return uint64(int64(f)), false
		}
		L.ArgError(n, "integer expected, got "+x.String()+" (not an exact integer with magnitude below 2^53: use an address or a hex string)")
	case lua.LString:
		if a, ok := parseAddress(string(x)); ok {
			return a, false
		}
	}
	L.ArgError(n, describeNotAddress(v))
	return 0, false
}

// pushBitResult pushes v as an address when asAddr or when a number would
// round it, else as a number.
func pushBitResult(L *lua.LState, env *Env, v uint64, asAddr bool) {
	if asAddr || v >= maxExact {
		pushAddress(L, env, v)
		return
	}
	L.Push(lua.LNumber(v))
}

func bitFold(env *Env, op func(a, b uint64) uint64) lua.LGFunction {
	return func(L *lua.LState) int {
		top := L.GetTop()
		if top == 0 {
			L.ArgError(1, "value expected")
		}
		acc, anyAddr := bitArg(L, 1)
		for i := 2; i <= top; i++ {
			v, isAddr := bitArg(L, i)
			acc, anyAddr = op(acc, v), anyAddr || isAddr
		}
		pushBitResult(L, env, acc, anyAddr)
		return 1
	}
}

func bitShift(env *Env, op func(v uint64, n uint64) uint64) lua.LGFunction {
	return func(L *lua.LState) int {
		v, isAddr := bitArg(L, 1)
		n := L.CheckNumber(2)
		if float64(n) < 0 || float64(n) != math.Trunc(float64(n)) {
			L.ArgError(2, "shift count must be a whole number from 0, got "+n.String())
		}
		var r uint64
		if float64(n) < 64 {
			r = op(v, uint64(n))
		} else {
			r = op(v, 64) // Go gives 0 for << and >> by 64; arshift clamps to 63
		}
		pushBitResult(L, env, r, isAddr)
		return 1
	}
}
