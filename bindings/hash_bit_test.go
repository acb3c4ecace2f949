package bindings

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// newTestState is a Lua state with the API registered and no target.
func newTestState(t *testing.T) *lua.LState {
	t.Helper()
	L := lua.NewState()
	t.Cleanup(L.Close)
	Register(L, &Env{})
	return L
}

// call calls global function path ("bit.band") with args and returns its
// results.
func call(t *testing.T, L *lua.LState, path string, args ...lua.LValue) []lua.LValue {
	t.Helper()
	var fn lua.LValue = L.G.Global
	for _, p := range strings.Split(path, ".") {
		fn = L.GetField(fn, p)
	}
	top := L.GetTop()
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	if err := L.PCall(len(args), lua.MultRet, nil); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := make([]lua.LValue, L.GetTop()-top)
	for i := range out {
		out[i] = L.Get(top + 1 + i)
	}
	L.SetTop(top)
	return out
}

// TestHashes: sha256 and crc32 agree with Go's crypto/sha256 and
// hash/crc32 on known vectors and on random strings of every length up to
// 300 bytes (NULs and high bytes included, as guest memory has them).
func TestHashes(t *testing.T) {
	L := newTestState(t)
	for in, want := range map[string]string{
		"":    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq": "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
	} {
		if got := call(t, L, "sha256", lua.LString(in))[0]; got.String() != want {
			t.Errorf("sha256(%q) = %s; FIPS 180-4 says %s", in, got, want)
		}
	}
	if got := call(t, L, "crc32", lua.LString("123456789"))[0]; got != lua.LNumber(0xcbf43926) {
		t.Errorf("crc32(123456789) = %v; the CRC-32 check value is 0xcbf43926", got)
	}
	if got := call(t, L, "crc32", lua.LString(""))[0]; got != lua.LNumber(0) {
		t.Errorf("crc32('') = %v", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		sum := sha256.Sum256(b)
		if got := call(t, L, "sha256", lua.LString(b))[0]; got.String() != hex.EncodeToString(sum[:]) {
			t.Fatalf("sha256 of %d random bytes = %s, Go says %x", n, got, sum)
		}
		if got := call(t, L, "crc32", lua.LString(b))[0]; got != lua.LNumber(crc32.ChecksumIEEE(b)) {
			t.Fatalf("crc32 of %d random bytes = %v, Go says %d", n, got, crc32.ChecksumIEEE(b))
		}
	}
}

// bitValue reads a bit result: its 64 bits, and whether it is an address.
func bitValue(t *testing.T, v lua.LValue) (uint64, bool) {
	t.Helper()
	switch x := v.(type) {
	case lua.LNumber:
		if float64(x) < 0 || float64(x) >= maxExact || float64(x) != math.Trunc(float64(x)) {
			t.Fatalf("bit result %v is not an exact non-negative integer", x)
		}
		return uint64(x), false
	case *lua.LUserData:
		if a, ok := x.Value.(Address); ok {
			return uint64(a), true
		}
	}
	t.Fatalf("bit result %v (%s) is neither a number nor an address", v, v.Type())
	return 0, false
}

// TestBitOps: every operation against Go's on edge values (bit 63 set,
// all ones, values around 2^53, negative numbers as two's complement,
// shifts of 0, 1, 63, 64 and beyond), with both numbers and addresses as
// operands; results are addresses exactly when an operand was one or the
// value is 2^53 or more.
func TestBitOps(t *testing.T) {
	L := newTestState(t)
	env := &Env{addressMT: L.GetTypeMetatable(addressTypeName).(*lua.LTable)}
	vals := []uint64{0, 1, 2, 0xff, 0xfff, 1<<32 - 1, 1 << 32, 1<<52 + 1, 1<<53 - 1, 1 << 53, 1<<53 + 1,
		1 << 62, 1 << 63, 1<<63 + 1, 0xffff888000000000, 0xffffffff81000000, math.MaxUint64 - 1, math.MaxUint64}
	r := rand.New(rand.NewPCG(3, 4))
	for range 40 {
		vals = append(vals, r.Uint64(), r.Uint64()>>r.IntN(64))
	}
	// operand returns v as a Lua value: an address, or a number when it is
	// one (a negative number for values near 2^64, as two's complement).
	operands := func(v uint64) []lua.LValue {
		out := []lua.LValue{newAddress(L, env, v), lua.LString(fmt.Sprintf("0x%x", v))}
		if v < maxExact {
			out = append(out, lua.LNumber(v))
		}
		if s := int64(v); s < 0 && s > -maxExact {
			out = append(out, lua.LNumber(s))
		}
		return out
	}
	isAddr := func(v lua.LValue) bool { return v.Type() == lua.LTUserData }
	check := func(what string, got lua.LValue, want uint64, addrIn bool) {
		t.Helper()
		v, a := bitValue(t, got)
		if v != want || a != (addrIn || want >= maxExact) {
			t.Fatalf("%s = %#x (address %v); Go says %#x (address %v)", what, v, a, want, addrIn || want >= maxExact)
		}
	}
	for _, x := range vals {
		for _, xv := range operands(x) {
			check(fmt.Sprintf("bnot(%v)", xv), call(t, L, "bit.bnot", xv)[0], ^x, isAddr(xv))
			for _, n := range []int{0, 1, 7, 31, 32, 52, 53, 63, 64, 65, 100, 1000} {
				sh := lua.LNumber(n)
				wl, wr, wa := uint64(0), uint64(0), uint64(int64(x)>>63)
				if n < 64 {
					wl, wr, wa = x<<n, x>>n, uint64(int64(x)>>n)
				}
				check(fmt.Sprintf("shl(%v, %d)", xv, n), call(t, L, "bit.shl", xv, sh)[0], wl, isAddr(xv))
				check(fmt.Sprintf("shr(%v, %d)", xv, n), call(t, L, "bit.shr", xv, sh)[0], wr, isAddr(xv))
				check(fmt.Sprintf("arshift(%v, %d)", xv, n), call(t, L, "bit.arshift", xv, sh)[0], wa, isAddr(xv))
			}
		}
		for _, y := range vals[:12] {
			for _, xv := range operands(x) {
				for _, yv := range operands(y) {
					addrIn := isAddr(xv) || isAddr(yv)
					check(fmt.Sprintf("band(%v, %v)", xv, yv), call(t, L, "bit.band", xv, yv)[0], x&y, addrIn)
					check(fmt.Sprintf("bor(%v, %v)", xv, yv), call(t, L, "bit.bor", xv, yv)[0], x|y, addrIn)
					check(fmt.Sprintf("bxor(%v, %v)", xv, yv), call(t, L, "bit.bxor", xv, yv)[0], x^y, addrIn)
					if got := call(t, L, "bit.test", xv, yv)[0]; got != lua.LBool(x&y != 0) {
						t.Fatalf("test(%v, %v) = %v", xv, yv, got)
					}
				}
			}
		}
	}
	// Three or more operands fold left to right.
	check("band(3 args)", call(t, L, "bit.band", lua.LNumber(0xff0), lua.LNumber(0x3c), lua.LNumber(0x38))[0], 0x30, false)
	check("bor(4 args)", call(t, L, "bit.bor", lua.LNumber(1), lua.LNumber(2), lua.LNumber(4), newAddress(L, env, 8))[0], 15, true)
	check("band(1 arg)", call(t, L, "bit.band", lua.LNumber(5))[0], 5, false)
}

// TestBitMisuse: what is not a 64-bit value, or not a shift count, raises
// an error that names the function and the argument.
func TestBitMisuse(t *testing.T) {
	for src, want := range map[string]string{
		`bit.band()`:                  "bad argument #1 to 'bit.band' (value expected)",
		`bit.band(1, 0.5)`:            "bad argument #2 to 'bit.band' (integer expected, got 0.5",
		`bit.bor(2^53)`:               "bad argument #1 to 'bit.bor' (integer expected",
		`bit.bxor(1, "zz")`:           `bad argument #2 to 'bit.bxor' (address expected, got string "zz")`,
		`bit.bnot(nil)`:               "bad argument #1 to 'bit.bnot' (address expected, got nil",
		`bit.shl(1, -1)`:              "bad argument #2 to 'bit.shl' (shift count must be a whole number from 0, got -1)",
		`bit.shr(1, 1.5)`:             "bad argument #2 to 'bit.shr' (shift count must be a whole number from 0, got 1.5)",
		`bit.arshift(1, 0/0)`:         "bad argument #2 to 'bit.arshift' (shift count must be a whole number from 0",
		`bit.test(1)`:                 "bad argument #2 to 'bit.test' (address expected, got nil",
		`sha256()`:                    "bad argument #1 to 'sha256' (string expected, got nil)",
		`crc32({})`:                   "bad argument #1 to 'crc32' (string expected, got table)",
		`bit.shl(addr(1), "2")`:       "",
		`assert(bit.shl(1, 64) == 0)`: "",
	} {
		msg := runLua(t, src)
		if want == "" && msg != "" || !strings.Contains(msg, want) {
			t.Errorf("%s: error %q, want %q", src, msg, want)
		}
	}
}
