package paging

import "github.com/xascript/xascript/vmi"

const (
	cacheBits = 12
	cacheSize = 1 << cacheBits // entries; 64 KiB per Space
	cacheMask = cacheSize - 1
)

// cacheEntry maps one 4 KiB virtual page to its physical frame. tag is the
// virtual page number plus one, so that the zero value is an empty slot.
// Large pages are cached one 4 KiB piece at a time: that keeps the hit path
// a single compare, and a miss inside a large page costs only a short walk.
//
// host is the frame's bytes in host memory when the target is a
// vmi.PageMapper (nil otherwise, or for frames it does not wholly hold):
// Read then copies from it directly. A target hands such pointers out only
// for as long as the generation they were cached under lasts (QEMU: while
// the guest is paused and QEMU is there), so no entry outlives it.
type cacheEntry struct {
	tag   uint64
	frame uint64
	host  *[vmi.PageSize]byte
}

// CacheStats counts translation-cache lookups since the Space was made;
// Flush does not reset them.
type CacheStats struct {
	Hits, Misses, Flushes uint64
}

// Stats returns the translation-cache counters.
func (s *Space) Stats() CacheStats { return s.stats }

// Flush drops every cached translation. A Space over a vmi.Generationer
// flushes by itself when the target's generation moves (the guest ran, the
// target went away); Flush is for the other cases, such as a user's demand
// on a target that never changes. Failed translations are never cached, so
// a page the guest maps later is seen without a flush.
func (s *Space) Flush() {
	s.cache = [cacheSize]cacheEntry{}
	s.stats.Flushes++
}

// sync flushes the cache when the target's generation has moved since it
// was filled. Callers load the generation before they walk, so that a bump
// during the walk leaves the new entry under the old generation, to be
// dropped by the next lookup.
func (s *Space) sync() {
	if g := s.gen.Load(); g != s.seen {
		s.Flush()
		s.seen = g
	}
}

// Translate returns the guest-physical address that va maps to. Failures
// are *TranslateError values.
//
// The hit path is a direct-mapped lookup keyed by the virtual page number:
// no map, no allocation, small enough to inline.
func (s *Space) Translate(va uint64) (uint64, error) {
	e := &s.cache[va>>pageShift&cacheMask]
	if e.tag != va>>pageShift+1 || s.gen.Load() != s.seen {
		return s.translateMiss(va)
	}
	s.stats.Hits++
	return e.frame | va&pageMask, nil
}

func (s *Space) translateMiss(va uint64) (uint64, error) {
	s.sync()
	s.stats.Misses++
	pa, _, err := s.walk(va, nil)
	if err != nil {
		return 0, err
	}
	vpn := va >> pageShift
	e := cacheEntry{tag: vpn + 1, frame: pa &^ pageMask}
	if s.mapper != nil {
		e.host = s.mapper.PhysPage(e.frame)
	}
	s.cache[vpn&cacheMask] = e
	return pa, nil
}
