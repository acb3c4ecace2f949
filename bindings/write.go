package bindings

import (
	"encoding/binary"
	"fmt"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// errReadOnly is what every write binding raises without --allow-write.
const errReadOnly = "guest memory is read-only; run with --allow-write"

func writeArea(env *Env) Area {
	area := Area{
		Name:        "write",
		Title:       "Writing guest memory",
		NeedsTarget: true,
		Doc: "Off unless xascript runs with `--allow-write`: without it every function here raises `" + errReadOnly +
			"`, and the target is opened read-only (a dump file, a QEMU guest's RAM file and Xen's frame mappings alike). " +
			"With it, raw and uncompressed dumps (the file changes), live QEMU guests and Xen domains can be written; a " +
			"compressed dump cannot (it is read from a decompressed copy) and raises an error that says so. Values are " +
			"stored little-endian. Plain names take kernel virtual addresses, translated through the kernel's page tables " +
			"like reads; a write that spans pages is split per page, and every page is translated before any byte is " +
			"stored, so a write that faults stores nothing and returns `nil, err` naming the address. The `_pa` " +
			"variants take guest-physical addresses. Reads after a write return the new value: cached pages are views " +
			"of the same memory, and cached translations are walked again (the write may have changed a page table).",
	}
	for _, space := range []struct {
		suffix, what string
		physical     bool
	}{{"", "kernel virtual", false}, {"_pa", "guest-physical", true}} {
		s := space
		for _, size := range []int{1, 2, 4, 8} {
			name := fmt.Sprintf("write_u%d%s", size*8, s.suffix)
			doc := fmt.Sprintf("Stores `value`, an unsigned %d-bit integer, at %s address `addr`. ", size*8, s.what)
			if size == 8 {
				doc += "`value` is an address value (64 bits do not fit a Lua number), an exact integer or a hex string."
			} else {
				doc += fmt.Sprintf("`value` is an integer in [0, 2^%d), or a negative one down to -2^%d, stored as "+
					"two's complement.", size*8, size*8-1)
			}
			area.Bindings = append(area.Bindings, Binding{Name: name,
				Signature: name + "(addr, value) -> true | nil, err", Doc: doc,
				Fn: writeUint(env, name, s.physical, size)})
		}
		name := "write_bytes" + s.suffix
		area.Bindings = append(area.Bindings, Binding{Name: name,
			Signature: name + "(addr, data) -> true | nil, err",
			Doc: fmt.Sprintf("Stores the bytes of the string `data` (at most %d) at %s address `addr`, as "+
				"`read_bytes%s` reads them.", maxReadBytes, s.what, s.suffix),
			Fn: writeBytes(env, name, s.physical)})
	}
	return area
}

// needWriter returns the guest as a GuestWriter, or raises: writing without
// --allow-write, or to a target that cannot be written, is a misuse of the
// script's run, not a fault of the guest.
func needWriter(L *lua.LState, env *Env, name string) GuestWriter {
	g := needGuest(L, env)
	if !env.AllowWrite {
		L.RaiseError("%s: %s", name, errReadOnly)
	}
	w, ok := g.(GuestWriter)
	if !ok {
		L.RaiseError("%s: this target cannot be written", name)
	}
	if err := w.Writable(); err != nil {
		L.RaiseError("%s: %v", name, err)
	}
	return w
}

func writeAt(w GuestWriter, physical bool, buf []byte, addr uint64) error {
	if physical {
		return w.WritePhys(buf, addr)
	}
	return w.WriteVirt(buf, addr)
}

func writeUint(env *Env, name string, physical bool, size int) lua.LGFunction {
	return func(L *lua.LState) int {
		w := needWriter(L, env, name)
		addr := checkAddress(L, 1)
		v := checkWriteValue(L, 2, size)
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		if err := writeAt(w, physical, b[:size], addr); err != nil {
			return fault(L, err)
		}
		L.Push(lua.LTrue)
		return 1
	}
}

// checkWriteValue reads argument n as a value of size bytes. A number must
// be an exact integer; one below zero is stored as two's complement, so
// write_u32(a, -1) stores 0xffffffff as C would.
func checkWriteValue(L *lua.LState, n, size int) uint64 {
	bits := uint(size * 8)
	v := L.Get(n)
	if num, ok := v.(lua.LNumber); ok {
		f := float64(num)
		lo, hi := -math.Ldexp(1, int(bits)-1), math.Ldexp(1, int(bits))
		if size == 8 {
			lo, hi = -maxExact, maxExact
		}
		if f != math.Trunc(f) || f < lo || f >= hi {
			L.ArgError(n, fmt.Sprintf("value %v does not fit %d unsigned bits (an exact integer in [%.0f, %.0f) is needed)", v, bits, lo, hi))
		}
		u := uint64(int64(f))
		if size < 8 {
			u &= 1<<bits - 1
		}
		return u
	}
	a, ok := toAddress(v)
	if !ok {
		L.ArgError(n, "value expected: an integer or an address, got "+v.Type().String())
	}
	if size < 8 && a >= 1<<bits {
		L.ArgError(n, fmt.Sprintf("value %#x does not fit %d bits", a, bits))
	}
	return a
}

func writeBytes(env *Env, name string, physical bool) lua.LGFunction {
	return func(L *lua.LState) int {
		w := needWriter(L, env, name)
		addr := checkAddress(L, 1)
		data := L.CheckString(2)
		if len(data) > maxReadBytes {
			L.ArgError(2, fmt.Sprintf("data is %d bytes; at most %d are written at once", len(data), maxReadBytes))
		}
		if err := writeAt(w, physical, []byte(data), addr); err != nil {
			return fault(L, err)
		}
		L.Push(lua.LTrue)
		return 1
	}
}
