package vmi

import "sync/atomic"

// Pauser is implemented by targets whose guest runs (live QEMU, Xen), and by
// layers above them that pass the capability on. A dump is not a Pauser: it
// never changes, so there is nothing to hold still.
//
// A Pauser owns only the pause it took: Resume undoes Pause and nothing
// else, so a guest that an operator paused (QMP `stop`, `xl pause`) before or
// while xascript ran is left paused, by Resume and by Close alike.
type Pauser interface {
	// Pause stops the guest's vCPUs so that memory holds still. Pausing a
	// guest that is already paused (by us or by anyone) is not an error
	// and takes no second pause.
	Pause() error
	// Resume lets the guest run again if, and only if, Pause stopped it.
	Resume() error
	// Paused reports whether the guest is stopped, by us or by anyone, as
	// far as the target knows.
	Paused() bool
}

// Generation counts the moments after which what was read from a guest may
// be stale: the guest ran (a resume, an operator's `cont` or `stop` seen
// through QMP events, a balloon), the target went away, a script wrote to
// it, or the user asked for fresh reads. It is the one "the target ran" signal that every cache
// built over a target checks: translations, host-page pointers, mapped
// frames, frames that failed to map, a PV guest's p2m. A cache remembers the
// value it was filled under and drops its entries when Load returns another.
//
// Loads are one atomic read, cheap enough for the hit path of a translation
// cache; Bump is safe from any goroutine (QMP events arrive on their own).
type Generation struct{ n atomic.Uint64 }

// Load returns the current generation.
func (g *Generation) Load() uint64 { return g.n.Load() }

// Bump moves the generation on, invalidating every cache filled before.
func (g *Generation) Bump() { g.n.Add(1) }

// Generationer is implemented by targets whose guest changes under us (live
// targets) and by targets a script may change (dumps, which move it only
// when written: see Writer). Being one does not make a target live; a
// Pauser is. Targets that do not implement it never change, and caches over
// them are flushed only on demand.
type Generationer interface {
	// Generation returns the target's counter: the same pointer for the
	// target's whole life, so a cache keeps it and pays one atomic load per
	// check instead of an interface call. Closing the target bumps it.
	Generation() *Generation
}
