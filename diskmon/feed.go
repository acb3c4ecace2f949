package diskmon

import (
	"sync/atomic"
	"time"
)

// ChangeKind says what a tap saw.
type ChangeKind uint8

// Kinds of changes a tap reports.
const (
	ChangeWrite ChangeKind = iota + 1
	ChangeTrim
	ChangeZeroes
	ChangeFlush // the guest asked for everything so far to be durable
)

// Change is one request a tap applied to the image.
type Change struct {
	Kind ChangeKind
	Off  uint64
	Len  uint64
	At   time.Time
}

// DefaultFeedSize is how many change records wait for the tracker before
// new ones are dropped (and counted).
const DefaultFeedSize = 65536

// Feed carries changes from a tap to the tracker without ever blocking the
// tap: when it is full, a change is counted as dropped instead.
type Feed struct {
	ch      chan Change
	dropped atomic.Uint64
	// notified counts every change handed over, dropped ones too: a
	// tracker compares it with the count when it last read the disk.
	notified atomic.Uint64
}

// NewFeed makes a feed holding up to size changes (DefaultFeedSize if <= 0).
func NewFeed(size int) *Feed {
	if size <= 0 {
		size = DefaultFeedSize
	}
	return &Feed{ch: make(chan Change, size)}
}

// Notify hands c to the tracker; it never blocks.
func (f *Feed) Notify(c Change) {
	if c.At.IsZero() {
		c.At = time.Now()
	}
	f.notified.Add(1)
	select {
	case f.ch <- c:
	default:
		f.dropped.Add(1)
	}
}

// takeDropped returns and clears the count of dropped changes.
func (f *Feed) takeDropped() uint64 { return f.dropped.Swap(0) }
