// Package stablehash is a small deterministic 64-bit hash for indexes that
// are persisted on disk (hash/maphash has a per-process seed, so it will
// not do): each 8-byte chunk is folded in through the splitmix64 finalizer,
// which spreads every input bit over the low bits that pick a slot.
package stablehash

import "encoding/binary"

// Bytes hashes b. The result must never change: indexes on disk depend on it.
func Bytes(b []byte) uint64 {
	h := uint64(len(b)) * 0x9e3779b97f4a7c15
	for len(b) >= 8 {
		h = mix(h ^ binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	var tail uint64
	for i, c := range b {
		tail |= uint64(c) << (8 * i)
	}
	return mix(h ^ tail)
}

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
