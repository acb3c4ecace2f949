package diskmon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// recorder collects a watch's events as lines.
type recorder struct{ evs []Event }

func (r *recorder) fn(e Event) { r.evs = append(r.evs, e) }

func (r *recorder) lines() []string {
	var out []string
	for _, e := range r.evs {
		out = append(out, e.String())
	}
	r.evs = nil
	return out
}

func mustWatch(t *testing.T, tr *Tracker, p string, o WatchOptions) (*Watch, *recorder) {
	t.Helper()
	r := &recorder{}
	w, err := tr.Watch(p, o, r.fn)
	if err != nil {
		t.Fatal(err)
	}
	return w, r
}

func expect(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	got := r.lines()
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got  %q\n want %q", got, want)
	}
}

// The paper's Program 5.2, all in one commit (one rescan) and within one
// clock tick: order comes from the inode numbers and creations-first.
func TestPaperSequence(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/root")
	f.touch("/root/bar")
	tr := NewTracker(f, nil, TrackerOptions{})
	_, r := mustWatch(t, tr, "/root", WatchOptions{})
	f.tick = 0
	f.mkdir("/root/foo")
	f.touch("/root/dummy")
	f.rm("/root/bar")
	tr.Rescan(time.Now())
	expect(t, r, "MKDIR: /root/foo", "MKFILE: /root/dummy", "RMFILE: /root/bar")
	tr.Rescan(time.Now())
	expect(t, r) // nothing new
}

func TestOrderByGuestTime(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	f.touch("/w/old")
	tr := NewTracker(f, nil, TrackerOptions{})
	_, r := mustWatch(t, tr, "/w", WatchOptions{Recursive: true})
	f.rm("/w/old")    // removal first
	f.mkdir("/w/a")   // then a folder
	f.touch("/w/a/b") // a's ctime moves past b's creation
	f.mkdir("/w/a/c") //
	f.touch("/w/z")   //
	f.touch("/w/a/c/d")
	tr.Rescan(time.Now())
	expect(t, r, "RMFILE: /w/old", "MKDIR: /w/a", "MKFILE: /w/a/b", "MKDIR: /w/a/c", "MKFILE: /w/z", "MKFILE: /w/a/c/d")

	// rm -r: children before their folder, whatever the timestamps say.
	f.tick = 0
	f.rm("/w/a/c/d")
	f.rm("/w/a/c")
	f.rm("/w/a/b")
	f.rm("/w/a")
	tr.Rescan(time.Now())
	expect(t, r, "RMFILE: /w/a/b", "RMFILE: /w/a/c/d", "RMDIR: /w/a/c", "RMDIR: /w/a")
}

func TestRenameLinkSymlink(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	f.touch("/w/f")
	f.mkdir("/w/d")
	f.touch("/w/d/inner")
	tr := NewTracker(f, nil, TrackerOptions{})
	_, r := mustWatch(t, tr, "/w", WatchOptions{Recursive: true})
	f.rename("/w/f", "/w/g")
	tr.Rescan(time.Now())
	expect(t, r, "RENAME: /w/f -> /w/g")
	f.rename("/w/d", "/w/e") // the subtree moves with it: one event
	tr.Rescan(time.Now())
	expect(t, r, "RENAME: /w/d -> /w/e")
	f.link("/w/g", "/w/h")
	f.symlink("/w/s", "/etc/passwd")
	tr.Rescan(time.Now())
	evs := r.evs
	if len(evs) != 2 || evs[0].Path != "/w/h" || !evs[0].Hardlink || evs[0].Links != 2 ||
		evs[1].Op != OpMkfile || evs[1].Type != TypeSymlink || evs[1].Target != "/etc/passwd" {
		t.Fatalf("link/symlink events: %+v", evs)
	}
	r.evs = nil
	// Removing one of two names is an RMFILE, not a rename.
	f.rm("/w/g")
	tr.Rescan(time.Now())
	expect(t, r, "RMFILE: /w/g")
}

func TestWatchLifecycle(t *testing.T) {
	f := newFakeFS()
	tr := NewTracker(f, nil, TrackerOptions{})
	w, r := mustWatch(t, tr, "/later/x", WatchOptions{})
	tr.Rescan(time.Now())
	expect(t, r)
	f.mkdir("/later")
	f.mkdir("/later/x")
	f.touch("/later/x/early")
	tr.Rescan(time.Now())
	expect(t, r, "MKFILE: /later/x/early") // the watch starts with its folder
	f.rm("/later/x/early")
	f.rm("/later/x")
	tr.Rescan(time.Now())
	got := r.evs
	if len(got) != 2 || got[0].String() != "RMFILE: /later/x/early" || got[1].String() != "RMDIR: /later/x" || !got[1].WatchEnded {
		t.Fatalf("end of watch: %+v", got)
	}
	r.evs = nil
	if w.Active() {
		t.Fatal("watch still active after its folder went")
	}
	f.mkdir("/later/x")
	f.touch("/later/x/again")
	tr.Rescan(time.Now())
	expect(t, r) // ended watches stay ended

	_, r2 := mustWatch(t, tr, "/later", WatchOptions{})
	w3, r3 := mustWatch(t, tr, "/later", WatchOptions{})
	w3.Close()
	f.touch("/later/y")
	tr.Rescan(time.Now())
	expect(t, r2, "MKFILE: /later/y")
	expect(t, r3)
}

func TestCorruptFolderKeepsNames(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	f.touch("/w/a")
	f.touch("/w/b")
	tr := NewTracker(f, nil, TrackerOptions{})
	_, r := mustWatch(t, tr, "/w", WatchOptions{})
	f.badDirs[f.must("/w")] = errors.New("block 1234: directory entry overruns the block")
	tr.Rescan(time.Now())
	got := r.lines()
	if len(got) != 1 || !strings.HasPrefix(got[0], "ERROR: /w: ") || !strings.Contains(got[0], "block 1234") {
		t.Fatalf("corrupt folder: %q", got)
	}
	tr.Rescan(time.Now())
	expect(t, r) // reported once, no removals
	delete(f.badDirs, f.must("/w"))
	f.touch("/w/c")
	tr.Rescan(time.Now())
	expect(t, r, "MKFILE: /w/c")
}

func TestRecursiveBounds(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	d := f.mkdir("/w/d")
	// A hostile tree: a folder listing its own ancestor.
	f.inodes[d].entries = append(f.inodes[d].entries, DirEntry{Name: "up", Ino: f.must("/w")})
	tr := NewTracker(f, nil, TrackerOptions{})
	_, r := mustWatch(t, tr, "/w", WatchOptions{Recursive: true})
	tr.Rescan(time.Now())
	got := r.lines()
	if len(got) != 1 || !strings.Contains(got[0], "folder reached twice") {
		t.Fatalf("loop: %q", got)
	}
	for i := range 20 {
		f.touch(fmt.Sprintf("/w/f%d", i))
	}
	_, r2 := mustWatch(t, tr, "/w", WatchOptions{MaxEntries: 5})
	f.touch("/w/more")
	tr.Rescan(time.Now())
	got = r2.lines()
	if len(got) != 1 || !strings.Contains(got[0], "more than 5 names") {
		t.Fatalf("bound: %q", got)
	}
	// Unknown inode numbers in a folder keep the name and say why.
	f.inodes[f.must("/w")].entries = append(f.inodes[f.must("/w")].entries, DirEntry{Name: "ghost", Ino: 999999})
	_, r3 := mustWatch(t, tr, "/w", WatchOptions{})
	tr.Rescan(time.Now())
	if got := r3.lines(); len(got) != 1 || !strings.Contains(got[0], "inode 999999 out of range") {
		t.Fatalf("bad inode: %q", got)
	}
}

func TestFileAttributes(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	ino := f.touch("/w/f")
	tr := NewTracker(f, nil, TrackerOptions{})
	_, rf := mustWatch(t, tr, "/w/f", WatchOptions{})
	_, rd := mustWatch(t, tr, "/w", WatchOptions{Files: true})
	_, rn := mustWatch(t, tr, "/w", WatchOptions{})
	st := &f.inodes[ino].st
	st.Size, st.Mtime = 100, f.now()
	tr.Rescan(time.Now())
	expect(t, rf, "WRITE: /w/f")
	expect(t, rd, "WRITE: /w/f")
	expect(t, rn)
	st.Size, st.Mtime = 10, f.now()
	st.Mode, st.Ctime = 0o4755, f.now()
	st.UID, st.Ctime = 1000, f.now()
	tr.Rescan(time.Now())
	expect(t, rf, "TRUNCATE: /w/f", "CHMOD: /w/f", "CHOWN: /w/f")
	rd.lines()
	f.rm("/w/f")
	tr.Rescan(time.Now())
	expect(t, rf, "RMFILE: /w/f")
}

func TestFeedOverflowAndRun(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	feed := NewFeed(4)
	tr := NewTracker(f, feed, TrackerOptions{Quiet: 20 * time.Millisecond})
	got := make(chan Event, 16)
	if _, err := tr.Watch("/w", WatchOptions{}, func(e Event) { got <- e }); err != nil {
		t.Fatal(err)
	}
	f.touch("/w/x")
	for i := range 10 { // 4 fit, 6 are dropped: the tracker is not running yet
		feed.Notify(Change{Kind: ChangeWrite, Off: uint64(i) * 4096, Len: 4096})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	wantOps := []Op{OpLost, OpMkfile}
	for _, op := range wantOps {
		select {
		case e := <-got:
			if e.Op != op {
				t.Fatalf("got %v, want %s", e, op)
			}
			if op == OpLost && !strings.Contains(e.Err, "lost 6 change records") {
				t.Fatalf("lost event: %v", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event", op)
		}
	}
	if n := tr.Rescans(); n != 1 {
		t.Fatalf("%d rescans for one burst, want 1", n)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestCompare(t *testing.T) {
	before := newFakeFS()
	before.mkdir("/root")
	before.touch("/root/bar")
	after := newFakeFS()
	after.mkdir("/root")
	after.touch("/root/bar")
	after.mkdir("/root/foo")
	after.touch("/root/dummy")
	after.rm("/root/bar")
	evs, err := Compare(before, after, []string{"/root"}, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.String())
	}
	want := []string{"MKDIR: /root/foo", "MKFILE: /root/dummy", "RMFILE: /root/bar"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
	if _, err := Compare(before, after, []string{"root"}, WatchOptions{}); err == nil {
		t.Fatal("relative path accepted")
	}
}

func TestFinishEndsWatches(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	tr := NewTracker(f, nil, TrackerOptions{})
	w, r := mustWatch(t, tr, "/w", WatchOptions{})
	f.touch("/w/last") // written just before the guest went away
	tr.Finish(time.Now())
	expect(t, r, "MKFILE: /w/last")
	select {
	case <-w.Done():
	default:
		t.Fatal("watch not done after Finish")
	}
	w2, _ := mustWatch(t, tr, "/w", WatchOptions{})
	select {
	case <-w2.Done():
	default:
		t.Fatal("a watch set after Finish waits for ever")
	}
	w3, _ := mustWatch(t, newTrackerFor(f), "/w", WatchOptions{})
	w3.Close()
	select {
	case <-w3.Done():
	default:
		t.Fatal("closed watch not done")
	}
}

// TestFinishNotified: with a tap that notifies each change once it is in
// the image, the last rescan is left out when nothing came since the last
// full rescan began, and made when something did (or none has run yet).
func TestFinishNotified(t *testing.T) {
	for _, c := range []struct {
		name        string
		rescanFirst bool
		writeAfter  bool
		wantRescans uint64
		want        []string
	}{
		{"unchanged", true, false, 1, []string{"MKFILE: /w/a"}},
		{"written after", true, true, 2, []string{"MKFILE: /w/a", "MKFILE: /w/b"}},
		{"never read", false, false, 1, []string{"MKFILE: /w/a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeFS()
			f.mkdir("/w")
			tr := NewTracker(f, nil, TrackerOptions{})
			w, r := mustWatch(t, tr, "/w", WatchOptions{})
			f.touch("/w/a")
			tr.Feed().Notify(Change{Kind: ChangeWrite})
			if c.rescanFirst {
				tr.Rescan(time.Now())
			}
			if c.writeAfter {
				f.touch("/w/b")
				tr.Feed().Notify(Change{Kind: ChangeWrite})
			}
			tr.FinishNotified(time.Now())
			expect(t, r, c.want...)
			if got := tr.Rescans(); got != c.wantRescans {
				t.Errorf("%d rescans, want %d", got, c.wantRescans)
			}
			select {
			case <-w.Done():
			default:
				t.Fatal("watch not done after FinishNotified")
			}
		})
	}
}

func newTrackerFor(f FSView) *Tracker { return NewTracker(f, nil, TrackerOptions{}) }

// commitFS is a fake journaled file system: every commit() keeps a copy of
// the tree, and Pin shows one of them, as diskmon/ext4's per-commit views do.
type commitFS struct {
	*fakeFS
	live    *fakeFS
	commits []uint32
	states  map[uint32]map[uint32]*fakeInode
	pinned  bool
}

func newCommitFS(f *fakeFS, first uint32) *commitFS {
	return &commitFS{fakeFS: f, live: f, states: map[uint32]map[uint32]*fakeInode{}, commits: []uint32{first}}
}

func cloneInodes(m map[uint32]*fakeInode) map[uint32]*fakeInode {
	out := map[uint32]*fakeInode{}
	for k, v := range m {
		c := *v
		c.entries = append([]DirEntry(nil), v.entries...)
		out[k] = &c
	}
	return out
}

func (c *commitFS) commit() {
	seq := c.commits[len(c.commits)-1] + 1
	c.commits = append(c.commits, seq)
	c.states[seq] = cloneInodes(c.live.inodes)
}

func (c *commitFS) Newest() (uint32, bool) { return c.commits[len(c.commits)-1], true }

func (c *commitFS) Commits(after uint32, max int) []uint32 {
	var out []uint32
	for _, s := range c.commits {
		if tidAfter(s, after) {
			out = append(out, s)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}

func (c *commitFS) Pin(seq uint32) error {
	st, ok := c.states[seq]
	if !ok {
		return fmt.Errorf("commit %d not in the journal", seq)
	}
	view := *c.live
	view.inodes = st
	c.fakeFS = &view
	return nil
}

func (c *commitFS) Unpin() { c.fakeFS = c.live }

// A file made in one commit and removed in the next, with the tracker
// rescanning only after both (it fell behind), is still reported: the
// tracker steps through the commits. Tids wrap around.
func TestCommitSteps(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	c := newCommitFS(f, 0xFFFFFFFE)
	tr := NewTracker(c, nil, TrackerOptions{})
	_, r := mustWatch(t, tr, "/w", WatchOptions{})
	f.touch("/w/brief")
	c.commit() // 0xFFFFFFFF
	f.rm("/w/brief")
	f.mkdir("/w/d")
	c.commit() // 0
	f.rename("/w/d", "/w/e")
	c.commit() // 1
	tr.Rescan(time.Now())
	expect(t, r, "MKFILE: /w/brief", "RMFILE: /w/brief", "MKDIR: /w/d", "RENAME: /w/d -> /w/e")
	tr.Rescan(time.Now())
	expect(t, r)
	// A watch set now starts from the newest commit: no replay of the past.
	_, r2 := mustWatch(t, tr, "/w", WatchOptions{})
	f.touch("/w/x")
	c.commit()
	tr.Rescan(time.Now())
	expect(t, r, "MKFILE: /w/x")
	expect(t, r2, "MKFILE: /w/x")
}

// A freed inode given to a new file in the same rescan is no rename.
func TestInodeReuseIsNoRename(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	f.symlink("/w/sl", "a/b")
	tr := NewTracker(f, nil, TrackerOptions{})
	_, r := mustWatch(t, tr, "/w", WatchOptions{})
	ino := f.must("/w/sl")
	f.rm("/w/sl")
	d := f.mkdir("/w/big")
	// The new folder takes the freed inode number, with a new generation.
	f.inodes[ino] = f.inodes[d]
	f.inodes[ino].st.Ino, f.inodes[ino].st.Generation = ino, 7
	dir := f.inodes[f.must("/w")]
	dir.entries[len(dir.entries)-1].Ino = ino
	tr.Rescan(time.Now())
	expect(t, r, "RMFILE: /w/sl", "MKDIR: /w/big")
}

// Writes that made no new commit (file data, checkpoints) cost no rescan of
// the watched tree.
func TestNoCommitNoRescan(t *testing.T) {
	f := newFakeFS()
	f.mkdir("/w")
	c := newCommitFS(f, 10)
	tr := NewTracker(c, nil, TrackerOptions{})
	_, r := mustWatch(t, tr, "/w", WatchOptions{})
	tr.rescan(time.Now(), false)
	tr.rescan(time.Now(), false)
	if tr.Skipped() != 2 {
		t.Fatalf("%d rescans skipped, want 2", tr.Skipped())
	}
	f.touch("/w/x")
	c.commit()
	tr.rescan(time.Now(), false)
	expect(t, r, "MKFILE: /w/x")
	if tr.Skipped() != 2 {
		t.Fatalf("a new commit was skipped")
	}
	// A change that bypassed the journal shows at a forced rescan (a FLUSH,
	// or IdleRescan after the last one).
	f.touch("/w/raw")
	tr.rescan(time.Now(), false)
	expect(t, r)
	tr.rescan(time.Now(), true)
	expect(t, r, "MKFILE: /w/raw")
}
