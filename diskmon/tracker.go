package diskmon

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// TrackerOptions tune when the tracker rescans.
type TrackerOptions struct {
	// Quiet: rescan once the disk has had no writes for this long (default
	// 100 ms), so that a burst of writes is read once, complete.
	Quiet time.Duration
	// AfterFlush: rescan this soon after a FLUSH (default 10 ms), even if
	// writes go on.
	AfterFlush time.Duration
	// MaxDelay: under continuous writes, rescan at least this often
	// (default 1 s).
	MaxDelay time.Duration
	// Without a journal (ext2) a quiet disk is no sign of a consistent one:
	// the guest's sync writes folders and inodes in any order, with pauses,
	// and ends with a FLUSH, which is the one moment its metadata is whole.
	// The Monitor keeps the disk's state at that FLUSH for the tracker (a
	// copy-on-write snapshot, flushsnap.go), which rescans
	// UnjournaledAfterFlush (default 10 ms) after it; without a FLUSH it
	// falls back to a quiet disk after UnjournaledQuiet (default 2 s) and
	// to continuous writes after UnjournaledMaxDelay (default 10 s).
	UnjournaledAfterFlush time.Duration
	UnjournaledQuiet      time.Duration
	UnjournaledMaxDelay   time.Duration
	// Logf, when set, gets one line per rescan (why, how long, what it
	// found): --verbose.
	Logf func(format string, args ...any)
	// IdleRescan: on a journaled file system, a burst of writes with no
	// new commit and no FLUSH is read at most this often (default 5 s).
	IdleRescan time.Duration
	// AfterRead, when set, is called once a rescan has read the disk (before
	// it delivers): a snapshot kept for it can go. It reports how many
	// snapshots had to be given up since the last call (then a LOST event
	// is delivered with the next rescan).
	AfterRead func() (lost int)
}

func (o TrackerOptions) withDefaults() TrackerOptions {
	if o.Quiet <= 0 {
		o.Quiet = 100 * time.Millisecond
	}
	if o.AfterFlush <= 0 {
		o.AfterFlush = 10 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = time.Second
	}
	if o.IdleRescan <= 0 {
		o.IdleRescan = 5 * time.Second
	}
	if o.UnjournaledAfterFlush <= 0 {
		o.UnjournaledAfterFlush = 10 * time.Millisecond
	}
	if o.UnjournaledQuiet <= 0 {
		o.UnjournaledQuiet = 2 * time.Second
	}
	if o.UnjournaledMaxDelay <= 0 {
		o.UnjournaledMaxDelay = 10 * time.Second
	}
	return o
}

// Tracker keeps the watches of one file system and turns the changes a tap
// reports into their events.
type Tracker struct {
	feed *Feed
	opts TrackerOptions

	// deliverMu makes rescans (and their deliveries) one at a time, so that
	// a watch's events come in order and none follows its Done.
	deliverMu  sync.Mutex
	mu         sync.Mutex // guards view (FSView is not safe for concurrent use) and watches
	view       FSView
	watches    []*Watch
	refreshErr string
	rescans    atomic.Uint64
	finished   bool
	// lastSeq is the newest journal commit the watches have seen (with a
	// CommitView).
	skipped       atomic.Uint64 // rescans that found no new commit
	lastFullNano  atomic.Int64  // when the last rescan read the watches
	lastSeq       uint32
	haveSeq       bool
	journaled     atomic.Bool
	lostSnapshots int
	// readAtNotified is the feed's notified count when the last full
	// rescan began (read is whether one has run): with the same count now,
	// a tap that notifies after applying each change has changed nothing
	// since (FinishNotified).
	readAtNotified uint64
	read           bool
}

// maxCommitSteps bounds the commits one rescan steps through; more are
// merged into the last step (and a LOST event says so).
const maxCommitSteps = 256

// NewTracker tracks view; taps report to Feed().
func NewTracker(view FSView, feed *Feed, opts TrackerOptions) *Tracker {
	if feed == nil {
		feed = NewFeed(0)
	}
	return &Tracker{view: view, feed: feed, opts: opts.withDefaults()}
}

// Feed is where taps send their changes.
func (t *Tracker) Feed() *Feed { return t.feed }

// Rescans counts the rescans done so far (for tests and stats).
func (t *Tracker) Rescans() uint64 { return t.rescans.Load() }

// Skipped counts the rescans that found no new commit and read nothing.
func (t *Tracker) Skipped() uint64 { return t.skipped.Load() }

// Watch is one watched path.
type Watch struct {
	t      *Tracker
	path   string
	opts   WatchOptions
	fn     func(Event)
	snap   *snapshot
	seq    uint32 // the newest commit its snapshot includes (with a CommitView)
	ended  bool
	closed atomic.Bool
	done   chan struct{} // closed once the watch can report no more
	finish sync.Once
}

// Done is closed when the watch has reported its last event: it was closed,
// its folder went away, or the tracker finished (the tap's source ended).
func (w *Watch) Done() <-chan struct{} { return w.done }

func (w *Watch) markDone() { w.finish.Do(func() { close(w.done) }) }

// Path is the watched path.
func (w *Watch) Path() string { return w.path }

// Close ends the watch; its callback is not called again.
func (w *Watch) Close() {
	if w.closed.Swap(true) {
		return
	}
	defer w.markDone()
	w.t.mu.Lock()
	defer w.t.mu.Unlock()
	for i, x := range w.t.watches {
		if x == w {
			w.t.watches = append(w.t.watches[:i], w.t.watches[i+1:]...)
			break
		}
	}
}

// Active tells whether the watch can still report (not closed, not ended).
func (w *Watch) Active() bool {
	w.t.mu.Lock()
	defer w.t.mu.Unlock()
	return !w.closed.Load() && !w.ended
}

// Watch starts watching path (absolute, in the guest's file system) as the
// disk is now; fn gets each later event, on the tracker's goroutine. A path
// that does not exist yet is watched from the moment it is created (its
// contents then are reported as new).
func (t *Tracker) Watch(path string, opts WatchOptions, fn func(Event)) (*Watch, error) {
	p, err := cleanWatchPath(path)
	if err != nil {
		return nil, err
	}
	w := &Watch{t: t, path: p, opts: opts.withDefaults(), fn: fn, done: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.view.Refresh(); err != nil {
		t.refreshErr = err.Error()
	}
	t.checkJournal()
	if cv, ok := t.view.(CommitView); ok {
		w.seq, _ = cv.Newest()
		t.noteSeq(w.seq)
	}
	w.snap = takeSnapshot(t.view, p, w.opts, nil)
	if msg, ok := w.snap.failed[p]; ok && !w.snap.exists {
		return nil, fmt.Errorf("watch %s: %s", p, msg)
	}
	if t.finished {
		w.markDone() // nothing will change any more: no event will come
		return w, nil
	}
	// Faults found now are reported with the first rescan's events.
	w.snap.failed = map[string]string{}
	t.watches = append(t.watches, w)
	return w, nil
}

// Run waits for changes and rescans until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	for {
		var first Change
		select {
		case <-ctx.Done():
			return ctx.Err()
		case first = <-t.feed.ch:
		}
		last := first.At
		var flushAt time.Time // the batch's first FLUSH: the rescan comes soon after it, whatever follows
		if first.Kind == ChangeFlush {
			flushAt = time.Now()
		}
		deadline := time.Now().Add(t.maxDelay())
		timer := time.NewTimer(t.wait(flushAt, deadline))
	collect:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case c := <-t.feed.ch:
				last = c.At
				if c.Kind == ChangeFlush && flushAt.IsZero() {
					flushAt = time.Now()
				}
				if !timer.Stop() {
					<-timer.C
				}
				timer.Reset(t.wait(flushAt, deadline))
			case <-timer.C:
				break collect
			}
		}
		flushed := !flushAt.IsZero()
		start := time.Now()
		st := t.rescan(last, !flushAt.IsZero() || time.Since(t.lastFull()) >= t.opts.IdleRescan)
		if t.opts.Logf != nil {
			t.opts.Logf("rescan %d after %s (flushed %v, last write %s ago, %d skipped so far): %d states read, %d names, %d events, %s",
				t.rescans.Load(), start.Sub(first.At).Round(time.Millisecond), flushed,
				start.Sub(last).Round(time.Millisecond), t.skipped.Load(), st.states, st.names, st.events,
				time.Since(start).Round(time.Microsecond))
		}
	}
}

func (t *Tracker) wait(flushAt, deadline time.Time) time.Duration {
	journaled := t.journaled.Load()
	var w time.Duration
	switch {
	case !flushAt.IsZero() && journaled:
		w = time.Until(flushAt.Add(t.opts.AfterFlush))
	case !flushAt.IsZero():
		w = time.Until(flushAt.Add(t.opts.UnjournaledAfterFlush))
	case journaled:
		w = t.opts.Quiet
	default:
		w = t.opts.UnjournaledQuiet
	}
	return max(min(w, time.Until(deadline)), 0)
}

func (t *Tracker) maxDelay() time.Duration {
	if t.journaled.Load() {
		return t.opts.MaxDelay
	}
	return t.opts.UnjournaledMaxDelay
}

// checkJournal notes whether the view reads committed journal
// transactions (then any moment is a consistent one).
func (t *Tracker) checkJournal() {
	cv, ok := t.view.(CommitView)
	if ok {
		_, ok = cv.Newest()
	}
	t.journaled.Store(ok)
}

// Rescan brings every watch up to date with the disk now and delivers the
// events, stamped with at (the time of the write that revealed them).
func (t *Tracker) Rescan(at time.Time) { t.rescan(at, true) }

// rescanStats say what one rescan did, for --verbose.
type rescanStats struct {
	states int // disk states read (commits stepped through, and now)
	names  int // names the watches' snapshots held, summed over the states
	events int
}

// rescan is Rescan; unless force, a journaled view with no new commit is
// not read again (see IdleRescan).
func (t *Tracker) rescan(at time.Time, force bool) (st rescanStats) {
	type batch struct {
		w   *Watch
		evs []Event
	}
	var out []batch
	t.deliverMu.Lock()
	defer t.deliverMu.Unlock()
	t.mu.Lock()
	t.rescans.Add(1)
	notified := t.feed.notified.Load()
	var refreshEv *Event
	if err := t.view.Refresh(); err != nil {
		if msg := err.Error(); msg != t.refreshErr {
			t.refreshErr = msg
			refreshEv = &Event{Op: OpError, Err: "refresh: " + msg}
		}
	} else {
		t.refreshErr = ""
	}
	t.checkJournal()
	lost := t.feed.takeDropped()
	lostSnaps := t.lostSnapshots
	t.lostSnapshots = 0
	prevSeq, hadSeq := t.lastSeq, t.haveSeq
	// The states to diff: each journal commit since the last rescan (but
	// the newest), then the disk as it is now.
	var steps []uint32
	cv, journaled := t.view.(CommitView)
	if journaled && t.haveSeq {
		commits := cv.Commits(t.lastSeq, maxCommitSteps+1)
		if len(commits) > maxCommitSteps {
			lost += uint64(len(commits) - maxCommitSteps)
			commits = commits[len(commits)-maxCommitSteps:]
		}
		if len(commits) > 0 {
			steps = commits[:len(commits)-1]
		}
	}
	if journaled {
		if seq, ok := cv.Newest(); ok {
			t.noteSeq(seq)
		}
	}
	// A journaled view changes with a new commit (an ext2 view read at the
	// guest's FLUSHes, with a new FLUSH): bursts of writes that made none
	// (file data, checkpoints) are not worth re-reading a large watched
	// tree for each. They are read at the next FLUSH, or IdleRescan after
	// the last full rescan, since a writer that bypasses the journal (a
	// raw write to the guest's block device) must show too.
	if !force && t.journaled.Load() && hadSeq && t.lastSeq == prevSeq && lost == 0 && lostSnaps == 0 && refreshEv == nil {
		t.skipped.Add(1)
		if t.opts.AfterRead != nil {
			t.lostSnapshots += t.opts.AfterRead()
		}
		t.mu.Unlock()
		return st
	}
	t.lastFullNano.Store(time.Now().UnixNano())
	t.readAtNotified, t.read = notified, true
	statNow := func(ino uint32) (Stat, bool) {
		st, err := t.view.Stat(ino)
		return st, err == nil
	}
	evs := map[*Watch][]Event{}
	var order []*Watch
	for _, w := range t.watches {
		if w.closed.Load() || w.ended {
			continue
		}
		order = append(order, w)
		if lost > 0 {
			evs[w] = append(evs[w], Event{Op: OpLost, Path: w.path, Err: fmt.Sprintf("lost %d change records, rescanning", lost)})
		}
		if lostSnaps > 0 {
			evs[w] = append(evs[w], Event{Op: OpLost, Path: w.path,
				Err: fmt.Sprintf("the disk's state at %d flushes could not be kept (too much written before the tracker read it), rescanning", lostSnaps)})
		}
		if refreshEv != nil {
			e := *refreshEv
			e.Path = w.path
			evs[w] = append(evs[w], e)
		}
	}
	step := func(seq uint32, pinned bool) {
		st.states++
		for _, w := range order {
			if w.ended || (pinned && !tidAfter(seq, w.seq)) {
				continue // the watch was set after this commit
			}
			cur := takeSnapshot(t.view, w.path, w.opts, w.snap)
			st.names += len(cur.entries)
			evs[w] = append(evs[w], failures(w.snap, cur)...)
			changes, ended := diff(w.snap, cur, diffInput{root: w.path, opts: w.opts, statNow: statNow})
			if len(evs[w]) == 0 {
				evs[w] = changes // no copy of a thousand events
			} else {
				evs[w] = append(evs[w], changes...)
			}
			w.snap = cur
			if pinned {
				w.seq = seq
			}
			if ended {
				w.ended = true
			}
		}
	}
	for _, seq := range steps {
		if err := cv.Pin(seq); err != nil {
			break // the commit left the window: the newest state still comes
		}
		step(seq, true)
	}
	if journaled {
		cv.Unpin()
	}
	step(0, false)
	for _, w := range order {
		if journaled && t.haveSeq {
			w.seq = t.lastSeq
		}
		if len(evs[w]) == 0 {
			continue
		}
		for i := range evs[w] {
			evs[w][i].Watch = w.path
			evs[w][i].Time = at
		}
		out = append(out, batch{w, evs[w]})
		st.events += len(evs[w])
	}
	if t.opts.AfterRead != nil {
		if n := t.opts.AfterRead(); n > 0 {
			t.lostSnapshots += n
		}
	}
	kept := t.watches[:0]
	for _, w := range t.watches {
		if !w.ended {
			kept = append(kept, w)
		}
	}
	t.watches = kept
	t.mu.Unlock()
	// Deliver outside the lock: a callback may add or close watches.
	for _, b := range out {
		for _, e := range b.evs {
			if b.w.closed.Load() {
				break
			}
			b.w.fn(e)
		}
		if b.w.ended {
			b.w.markDone()
		}
	}
	return st
}

// Finish is called when the tap's source has ended (the guest disconnected,
// a request stream reached its end): one last rescan delivers what the last
// writes revealed, then every watch is done.
func (t *Tracker) Finish(at time.Time) {
	t.Rescan(at)
	t.end()
}

// FinishNotified is Finish for a tap that notifies each change only once
// it is in the image (the NBD server): when no change has come since the
// last full rescan began, that rescan has already read the disk as it is,
// and the last one is left out. A monitor of a large tree on a slow host
// then stops at once on a signal instead of reading the tree again.
func (t *Tracker) FinishNotified(at time.Time) {
	t.deliverMu.Lock() // waits for a rescan under way
	t.mu.Lock()
	current := t.read && t.feed.notified.Load() == t.readAtNotified &&
		t.feed.dropped.Load() == 0 && t.lostSnapshots == 0 && t.refreshErr == ""
	t.mu.Unlock()
	t.deliverMu.Unlock()
	if !current {
		t.Rescan(at)
	}
	t.end()
}

// end marks the tracker finished and every watch done.
func (t *Tracker) end() {
	t.deliverMu.Lock()
	defer t.deliverMu.Unlock()
	t.mu.Lock()
	t.finished = true
	ws := t.watches
	t.watches = nil
	t.mu.Unlock()
	for _, w := range ws {
		w.markDone()
	}
}

// failures reports faults that are new since the last snapshot (a folder
// that stays corrupt is reported once, not at every rescan).
func failures(old, cur *snapshot) []Event {
	var paths []string
	for p, msg := range cur.failed {
		if old == nil || old.failed[p] != msg {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	evs := make([]Event, 0, len(paths))
	for _, p := range paths {
		evs = append(evs, Event{Op: OpError, Path: p, Err: cur.failed[p]})
	}
	return evs
}

// Compare gives the events between two states of the same file system (an
// image before and after), for the watched paths: forensics without a tap.
func Compare(before, after FSView, paths []string, opts WatchOptions) ([]Event, error) {
	opts = opts.withDefaults()
	var out []Event
	statNow := func(ino uint32) (Stat, bool) {
		st, err := after.Stat(ino)
		return st, err == nil
	}
	for _, path := range paths {
		p, err := cleanWatchPath(path)
		if err != nil {
			return nil, err
		}
		old := takeSnapshot(before, p, opts, nil)
		cur := takeSnapshot(after, p, opts, old)
		evs := failures(old, cur)
		changes, _ := diff(old, cur, diffInput{root: p, opts: opts, statNow: statNow})
		evs = append(evs, changes...)
		for i := range evs {
			evs[i].Watch = p
		}
		out = append(out, evs...)
	}
	return out, nil
}

// noteSeq records the newest commit seen.
func (t *Tracker) noteSeq(seq uint32) {
	if !t.haveSeq || tidAfter(seq, t.lastSeq) {
		t.lastSeq, t.haveSeq = seq, true
	}
}

func (t *Tracker) lastFull() time.Time { return time.Unix(0, t.lastFullNano.Load()) }
