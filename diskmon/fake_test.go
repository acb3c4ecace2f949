package diskmon

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
)

// fakeFS is an in-memory file system with a clock that ticks per change,
// standing in for diskmon/ext4 in the tracker's unit tests.
type fakeFS struct {
	inodes  map[uint32]*fakeInode
	next    uint32
	clock   time.Time
	tick    time.Duration
	badDirs map[uint32]error // ReadDir fails
}

type fakeInode struct {
	st      Stat
	entries []DirEntry
	target  string
}

func newFakeFS() *fakeFS {
	f := &fakeFS{inodes: map[uint32]*fakeInode{}, next: 11, clock: time.Unix(1_700_000_000, 0), tick: time.Millisecond,
		badDirs: map[uint32]error{}}
	f.inodes[2] = &fakeInode{st: Stat{Ino: 2, Type: TypeDir, Mode: 0o755, Links: 2}}
	return f
}

func (f *fakeFS) now() time.Time { f.clock = f.clock.Add(f.tick); return f.clock }

func (f *fakeFS) Refresh() error { return nil }

func (f *fakeFS) Lookup(p string) (uint32, error) {
	ino := uint32(2)
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == "" {
			continue
		}
		d := f.inodes[ino]
		if d.st.Type != TypeDir {
			return 0, errNotDirComponent
		}
		found := false
		for _, e := range d.entries {
			if e.Name == c {
				ino, found = e.Ino, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("lookup %s: %w", p, fs.ErrNotExist)
		}
	}
	return ino, nil
}

func (f *fakeFS) ReadDir(ino uint32) ([]DirEntry, error) {
	if err := f.badDirs[ino]; err != nil {
		return nil, err
	}
	d, ok := f.inodes[ino]
	if !ok || d.st.Type != TypeDir {
		return nil, errors.New("not a folder")
	}
	return append([]DirEntry(nil), d.entries...), nil
}

func (f *fakeFS) Stat(ino uint32) (Stat, error) {
	i, ok := f.inodes[ino]
	if !ok {
		return Stat{}, fmt.Errorf("inode %d out of range", ino)
	}
	return i.st, nil
}

func (f *fakeFS) ReadLink(ino uint32) (string, error) { return f.inodes[ino].target, nil }

func (f *fakeFS) must(p string) uint32 {
	ino, err := f.Lookup(p)
	if err != nil {
		panic(err)
	}
	return ino
}

func splitPath(p string) (string, string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

func (f *fakeFS) add(p string, typ FileType) uint32 {
	dir, name := splitPath(p)
	d := f.inodes[f.must(dir)]
	t := f.now()
	ino := f.next
	f.next++
	f.inodes[ino] = &fakeInode{st: Stat{Ino: ino, Type: typ, Mode: 0o644, Links: 1, Mtime: t, Ctime: t, Crtime: t}}
	d.entries = append(d.entries, DirEntry{Name: name, Ino: ino})
	d.st.Mtime, d.st.Ctime = t, t
	return ino
}

func (f *fakeFS) mkdir(p string) uint32 { return f.add(p, TypeDir) }
func (f *fakeFS) touch(p string) uint32 { return f.add(p, TypeFile) }

func (f *fakeFS) symlink(p, target string) {
	ino := f.add(p, TypeSymlink)
	f.inodes[ino].target = target
}

func (f *fakeFS) unlinkName(p string) uint32 {
	dir, name := splitPath(p)
	d := f.inodes[f.must(dir)]
	for i, e := range d.entries {
		if e.Name == name {
			d.entries = append(d.entries[:i], d.entries[i+1:]...)
			t := f.now()
			d.st.Mtime, d.st.Ctime = t, t
			return e.Ino
		}
	}
	panic("no " + p)
}

func (f *fakeFS) rm(p string) {
	ino := f.unlinkName(p)
	in := f.inodes[ino]
	in.st.Links--
	in.st.Ctime = f.clock
}

func (f *fakeFS) link(old, p string) {
	ino := f.must(old)
	dir, name := splitPath(p)
	d := f.inodes[f.must(dir)]
	d.entries = append(d.entries, DirEntry{Name: name, Ino: ino})
	f.inodes[ino].st.Links++
	f.inodes[ino].st.Ctime = f.now()
}

func (f *fakeFS) rename(old, p string) {
	ino := f.unlinkName(old)
	dir, name := splitPath(p)
	d := f.inodes[f.must(dir)]
	d.entries = append(d.entries, DirEntry{Name: name, Ino: ino})
	f.inodes[ino].st.Ctime = f.now()
}
