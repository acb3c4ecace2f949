package diskmon

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"
)

// diffInput is what diff needs besides the two snapshots.
type diffInput struct {
	root string
	opts WatchOptions
	// statNow reads an inode's current attributes: a removed name's freed
	// inode carries the time of its removal.
	statNow func(ino uint32) (Stat, bool)
}

// pending is one event with the key it is ordered by.
type pending struct {
	ev    Event
	key   time.Time
	class int // ties: creations, renames, attribute changes, removals
}

const (
	classCreate = iota
	classRename
	classAttr
	classRemove
)

// diff compares two snapshots of one watch and returns the events between
// them in the order described in the package doc. ended says the watch's
// root went away (or stopped being a folder).
func diff(old, cur *snapshot, in diffInput) (events []Event, ended bool) {
	root := in.root
	var ps []pending
	rootGone := old.exists && (!cur.exists || old.rootDir != cur.rootDir ||
		old.entries[root].Ino != cur.entries[root].Ino)

	curEntries := cur.entries
	if rootGone {
		curEntries = map[string]entry{} // everything below the old root is gone
	}
	var added, removed []string
	for p, e := range curEntries {
		if p == root {
			continue
		}
		if o, ok := old.entries[p]; !ok || o.Ino != e.Ino {
			added = append(added, p)
		}
	}
	for p, o := range old.entries {
		if p == root {
			continue
		}
		if e, ok := curEntries[p]; !ok || e.Ino != o.Ino {
			removed = append(removed, p)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)

	// Pair a removed name with an added name of the same inode: a rename.
	// (A rescan that only adds or only removes, as most do, has none.)
	renamedTo := map[string]string{} // old path -> new path
	renamedFrom := map[string]string{}
	if len(added) > 0 && len(removed) > 0 {
		addedByIno := make(map[uint32][]string, len(added))
		for _, p := range added {
			addedByIno[curEntries[p].Ino] = append(addedByIno[curEntries[p].Ino], p)
		}
		for _, p := range removed {
			ino := old.entries[p].Ino
			if ino == 0 {
				continue
			}
			// The same inode number with another type or generation is a new
			// file that reuses a freed inode, not a rename.
			if cands := addedByIno[ino]; len(cands) > 0 && sameFile(old.entries[p], curEntries[cands[0]]) {
				// A name that stays (a hard link elsewhere) does not make this a
				// rename; the inode must have left p.
				renamedTo[p], renamedFrom[cands[0]] = cands[0], p
				addedByIno[ino] = cands[1:]
			}
		}
	}
	// A folder rename moves its whole subtree; report only the folder.
	dirMoves := map[string]string{}
	for from, to := range renamedTo {
		if old.entries[from].Type == TypeDir {
			dirMoves[from] = to
		}
	}
	impliedByMove := func(from, to string) bool {
		for d := parentOf(from); d != "" && d != root; d = parentOf(d) {
			if nd, ok := dirMoves[d]; ok {
				return strings.TrimPrefix(from, d) == strings.TrimPrefix(to, nd)
			}
		}
		return false
	}

	liveInos := map[uint32]bool{} // inodes whose name existed before and stays
	if len(added) > 0 {
		for p, e := range curEntries {
			if o, ok := old.entries[p]; ok && o.Ino == e.Ino {
				liveInos[e.Ino] = true
			}
		}
	}
	seenNew := make(map[uint32]bool, len(added))
	ps = make([]pending, 0, len(added)+len(removed))
	for _, p := range added {
		e := curEntries[p]
		if from, ok := renamedFrom[p]; ok {
			if impliedByMove(from, p) {
				continue
			}
			ev := eventFor(OpRename, p, e)
			ev.OldPath = from
			ps = append(ps, pending{ev: ev, key: e.Ctime, class: classRename})
			continue
		}
		op := OpMkfile
		if e.Type == TypeDir {
			op = OpMkdir
		}
		ev := eventFor(op, p, e)
		if e.Type != TypeDir && (liveInos[e.Ino] || seenNew[e.Ino]) {
			ev.Hardlink = true
		}
		seenNew[e.Ino] = true
		key := e.Crtime
		if key.IsZero() {
			key = e.Ctime
		}
		ps = append(ps, pending{ev: ev, key: key, class: classCreate})
	}
	for _, p := range removed {
		if _, ok := renamedTo[p]; ok {
			continue
		}
		if under := removedParentMove(p, dirMoves, root); under {
			continue
		}
		o := old.entries[p]
		op := OpRmfile
		if o.Type == TypeDir {
			op = OpRmdir
		}
		ev := eventFor(op, p, o)
		// The freed inode's change time (or, where the writer did not move
		// it, its deletion time) says when the name went; an inode already
		// given to another file (new generation) says nothing of it.
		key := o.Ctime
		if now, ok := in.statNow(o.Ino); ok && now.Generation == o.Generation {
			for _, t := range []time.Time{now.Ctime, now.Dtime} {
				if t.After(key) {
					key = t
				}
			}
		}
		ps = append(ps, pending{ev: ev, key: key, class: classRemove})
	}
	// Attribute changes of names that stayed.
	for p, e := range curEntries {
		o, ok := old.entries[p]
		if !ok || o.Ino != e.Ino || e.Type == TypeDir {
			continue
		}
		if p != root && !in.opts.Files {
			continue
		}
		ps = append(ps, attrEvents(p, o, e)...)
	}
	if rootGone {
		o := old.entries[root]
		op := OpRmfile
		if old.rootDir {
			op = OpRmdir
		}
		ev := eventFor(op, root, o)
		ev.WatchEnded = true
		ps = append(ps, pending{ev: ev, key: farFuture, class: classRemove})
	}
	return order(ps), rootGone
}

var farFuture = time.Unix(1<<40, 0)

func removedParentMove(p string, dirMoves map[string]string, root string) bool {
	for d := parentOf(p); d != "" && d != root; d = parentOf(d) {
		if _, ok := dirMoves[d]; ok {
			return true
		}
	}
	return false
}

func attrEvents(p string, o, e entry) []pending {
	var ps []pending
	switch {
	case e.Size < o.Size:
		ps = append(ps, pending{ev: eventFor(OpTruncate, p, e), key: e.Mtime, class: classAttr})
	case e.Size > o.Size || !e.Mtime.Equal(o.Mtime):
		ps = append(ps, pending{ev: eventFor(OpWrite, p, e), key: e.Mtime, class: classAttr})
	}
	if e.Mode != o.Mode {
		ps = append(ps, pending{ev: eventFor(OpChmod, p, e), key: e.Ctime, class: classAttr})
	}
	if e.UID != o.UID || e.GID != o.GID {
		ps = append(ps, pending{ev: eventFor(OpChown, p, e), key: e.Ctime, class: classAttr})
	}
	return ps
}

func eventFor(op Op, p string, e entry) Event {
	return Event{Op: op, Path: p, Ino: e.Ino, Type: e.Type, Size: e.Size, Mode: e.Mode, UID: e.UID, GID: e.GID,
		Links: e.Links, Target: e.target, Ctime: e.Ctime}
}

// order sorts by the guest's timestamps, then makes sure a folder is created
// before anything in it and removed after everything in it.
func order(ps []pending) []Event {
	// Sort indexes, not the events: an event is a couple of hundred bytes.
	byKey := make([]int32, len(ps))
	for i := range byKey {
		byKey[i] = int32(i)
	}
	slices.SortStableFunc(byKey, func(i, j int32) int {
		a, b := &ps[i], &ps[j]
		if c := a.key.Compare(b.key); c != 0 {
			return c
		}
		if c := cmp.Compare(a.class, b.class); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ev.Ino, b.ev.Ino); c != 0 {
			return c
		}
		return strings.Compare(a.ev.Path, b.ev.Path)
	})
	// at is the i-th pending event in sorted order.
	at := func(i int) *pending { return &ps[byKey[i]] }
	// Only folders have things in them to order around.
	created := map[string]int{}      // folder -> index of its creation
	removedDirs := map[string]bool{} // folders removed
	for i := range byKey {
		if p := at(i); p.ev.Type == TypeDir {
			switch p.class {
			case classCreate:
				created[p.ev.Path] = i
			case classRemove:
				removedDirs[p.ev.Path] = true
			}
		}
	}
	removedIn := map[string][]int{} // removed folder -> indexes of removals directly in it
	if len(removedDirs) > 0 {
		for i := range byKey {
			if p := at(i); p.class == classRemove {
				if d := parentOf(p.ev.Path); removedDirs[d] {
					removedIn[d] = append(removedIn[d], i)
				}
			}
		}
	}
	out := make([]Event, 0, len(byKey))
	done := make([]bool, len(byKey))
	var emit func(i int)
	emit = func(i int) {
		if done[i] {
			return
		}
		done[i] = true // before recursing: a hostile tree cannot loop us
		p := at(i)
		switch p.class {
		case classCreate:
			if j, ok := created[parentOf(p.ev.Path)]; ok {
				emit(j)
			}
		case classRemove:
			if p.ev.Type == TypeDir {
				for _, j := range removedIn[p.ev.Path] {
					emit(j)
				}
			}
		}
		out = append(out, p.ev)
	}
	for i := range byKey {
		emit(i)
	}
	return out
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	switch {
	case i < 0 || p == "/":
		return ""
	case i == 0:
		return "/"
	}
	return p[:i]
}

// sameFile tells whether two entries with one inode number are one file.
func sameFile(a, b entry) bool {
	return a.Type == b.Type && a.Generation == b.Generation
}
