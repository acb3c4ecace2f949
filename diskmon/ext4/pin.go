package ext4

import (
	"fmt"
	"sort"
)

// Per-commit views (doc.go, "Per-commit views"): when a guest commits
// several transactions between two Refresh calls, the caller steps
// through them with Commits and Pin instead of seeing only the newest.

// Commits returns the sequence numbers of the committed transactions in
// the overlay window newer than after (tid comparison with wrap-around, as
// jbd2's tid_gt), oldest first; at most max of them (the newest max when
// more). Without a journal, or with max <= 0, it returns none.
func (f *FS) Commits(after uint32, max int) []uint32 {
	if f.jnl == nil || max <= 0 {
		return nil
	}
	tr := f.jnl.trans
	// The window's sequences follow one another, so it is sorted in tid
	// order.
	i := sort.Search(len(tr), func(i int) bool { return tidGT(tr[i].seq, after) })
	if len(tr)-i > max {
		i = len(tr) - max
	}
	out := make([]uint32, 0, len(tr)-i)
	for _, t := range tr[i:] {
		out = append(out, t.seq)
	}
	return out
}

// Pin makes every later read (Inode, ReadDir, Lookup, ReadLink, ReadFile)
// show the file system as it was right after commit seq: home blocks
// overlaid with the newest copy of each block from the transactions with
// sequence <= seq, revokes with sequence <= seq honoured, as e2fsck's
// replay up to that transaction would write (blocks never journaled in
// the window read from home: see the package doc). The superblock and
// group descriptors are re-read through the pinned view. Pin of a
// sequence not in the window is an error wrapping ErrNoCommit, and leaves
// the view as it was. Unpin returns to the newest committed state;
// Refresh unpins.
func (f *FS) Pin(seq uint32) error {
	j := f.jnl
	if j == nil {
		return fmt.Errorf("ext4: pin transaction %d: no journal: %w", seq, ErrNoCommit)
	}
	if !j.inWindow(seq) {
		if len(j.trans) == 0 {
			return fmt.Errorf("ext4: pin transaction %d: the journal window is empty: %w", seq, ErrNoCommit)
		}
		return fmt.Errorf("ext4: pin transaction %d: window holds %d..%d: %w",
			seq, j.trans[0].seq, j.trans[len(j.trans)-1].seq, ErrNoCommit)
	}
	wasPinned, oldSeq := j.pinned, j.pinSeq
	f.forgetBlocks()
	if !wasPinned {
		f.unpinnedSB, f.unpinnedGDT = f.sb, f.gdt
	}
	j.pinned, j.pinSeq = true, seq
	// readSuper replaces sb and gdt only when it succeeds.
	if err := f.readSuper(); err != nil {
		j.pinned, j.pinSeq = wasPinned, oldSeq
		if !wasPinned {
			f.unpinnedSB, f.unpinnedGDT = nil, nil
		}
		return fmt.Errorf("ext4: pin transaction %d: %w", seq, err)
	}
	return nil
}

// Unpin returns reads to the newest committed state (as of the last Open
// or Refresh). It reads nothing.
func (f *FS) Unpin() {
	if f.jnl == nil || !f.jnl.pinned {
		return
	}
	f.jnl.pinned = false
	f.forgetBlocks()
	f.sb, f.gdt = f.unpinnedSB, f.unpinnedGDT
	f.unpinnedSB, f.unpinnedGDT = nil, nil
}

// Pinned reports the pinned transaction, if any.
func (f *FS) Pinned() (seq uint32, ok bool) {
	if f.jnl == nil || !f.jnl.pinned {
		return 0, false
	}
	return f.jnl.pinSeq, true
}

func (j *journal) inWindow(seq uint32) bool {
	tr := j.trans
	i := sort.Search(len(tr), func(i int) bool { return !tidGT(seq, tr[i].seq) })
	return i < len(tr) && tr[i].seq == seq
}

// pinnedCopy picks, for home block blk whose newest copy is c, the copy
// the pinned view shows: the newest with sequence <= pinSeq, unless a
// revoke of blk with a sequence from that copy's up to pinSeq cancels it
// (jbd2_journal_test_revoke: a record at least as new as the copy's
// transaction). Histories are sorted by sequence: binary search, so a
// block a hostile log journals thousands of times costs a few steps.
func (j *journal) pinnedCopy(blk uint64, c jcopy) (jcopy, bool) {
	p := j.pinSeq
	if tidGT(c.seq, p) {
		o := j.older[blk]
		i := sort.Search(len(o), func(i int) bool { return tidGT(o[i].seq, p) })
		if i == 0 {
			return jcopy{}, false
		}
		c = o[i-1]
	}
	r, ok := j.revoked[blk]
	if ok && tidGT(r, p) {
		o := j.olderRev[blk]
		i := sort.Search(len(o), func(i int) bool { return tidGT(o[i], p) })
		ok = i > 0
		if ok {
			r = o[i-1]
		}
	}
	if ok && !tidGT(c.seq, r) {
		return jcopy{}, false
	}
	return c, true
}

// LastCommitted is the sequence of the newest committed transaction seen,
// or, when the window is empty, the one before the transaction the journal
// expects next (so that every later commit is newer). False without a
// journal.
func (f *FS) LastCommitted() (uint32, bool) {
	if f.jnl == nil {
		return 0, false
	}
	if n := len(f.jnl.trans); n > 0 {
		return f.jnl.trans[n-1].seq, true
	}
	return f.jnl.nextSeq - 1, true
}
