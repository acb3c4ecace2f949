package diskmon

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// WatchOptions say how far a watch reaches.
type WatchOptions struct {
	// Recursive watches every folder below the watched one too.
	Recursive bool
	// Files reports WRITE, TRUNCATE, CHMOD and CHOWN for the files in the
	// watched folders (a watch on a file always reports them).
	Files bool
	// MaxDepth bounds a recursive watch (default 16 levels below the root).
	MaxDepth int
	// MaxEntries bounds the names one watch holds (default 1,000,000), so a
	// guest cannot make the tracker's memory grow without end.
	MaxEntries int
}

const (
	defaultMaxDepth   = 16
	defaultMaxEntries = 1_000_000
	maxLinkTarget     = 4096
)

func (o WatchOptions) withDefaults() WatchOptions {
	if o.MaxDepth <= 0 {
		o.MaxDepth = defaultMaxDepth
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = defaultMaxEntries
	}
	return o
}

// entry is one name a snapshot holds.
type entry struct {
	Stat
	target string // symlinks
}

// snapshot is what a watch saw at one rescan: every name below the root
// (and the root itself), keyed by full path.
type snapshot struct {
	exists  bool
	rootDir bool
	entries map[string]entry
	// failed holds the folders (or the root) that could not be read, with
	// the reason; their names are carried over from the last good snapshot.
	failed map[string]string
}

func emptySnapshot() *snapshot {
	return &snapshot{entries: map[string]entry{}, failed: map[string]string{}}
}

// takeSnapshot reads the watch rooted at root from view. Faults inside the
// tree are recorded in failed (with prev's names kept for that folder);
// the result is never nil.
func takeSnapshot(view FSView, root string, opts WatchOptions, prev *snapshot) *snapshot {
	s := emptySnapshot()
	ino, err := view.Lookup(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDirComponent) {
			return s // not there (yet, or any more)
		}
		return carryAll(prev, root, err)
	}
	st, err := view.Stat(ino)
	if err != nil {
		return carryAll(prev, root, err)
	}
	s.exists = true
	s.rootDir = st.Type == TypeDir
	s.entries[root] = entry{Stat: st}
	if !s.rootDir {
		return s
	}
	type dir struct {
		path  string
		ino   uint32
		depth int
	}
	visited := map[uint32]bool{ino: true}
	queue := []dir{{root, ino, 0}}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		list, err := view.ReadDir(d.ino)
		if err != nil {
			s.failed[d.path] = fmt.Sprintf("folder %s (inode %d): %v", d.path, d.ino, err)
			carryBelow(s, prev, d.path)
			continue
		}
		for _, de := range list {
			if len(s.entries) >= opts.MaxEntries {
				s.failed[root] = fmt.Sprintf("more than %d names below %s: the watch holds the first %d", opts.MaxEntries, root, opts.MaxEntries)
				return s
			}
			if de.Name == "" || de.Name == "." || de.Name == ".." || strings.Contains(de.Name, "/") {
				s.failed[d.path] = fmt.Sprintf("folder %s (inode %d): invalid name %q", d.path, d.ino, de.Name)
				continue
			}
			p := joinPath(d.path, de.Name)
			est, err := view.Stat(de.Ino)
			if err != nil {
				// Keep the name (it is on disk) but say why it has no attributes.
				s.failed[p] = fmt.Sprintf("%s (inode %d): %v", p, de.Ino, err)
				est = Stat{Ino: de.Ino}
			}
			e := entry{Stat: est}
			if est.Type == TypeSymlink {
				if t, err := view.ReadLink(de.Ino); err == nil && len(t) <= maxLinkTarget {
					e.target = t
				}
			}
			s.entries[p] = e
			if opts.Recursive && est.Type == TypeDir && d.depth+1 <= opts.MaxDepth {
				if visited[de.Ino] {
					s.failed[p] = fmt.Sprintf("%s (inode %d): folder reached twice (a loop in the directory tree)", p, de.Ino)
					continue
				}
				visited[de.Ino] = true
				queue = append(queue, dir{p, de.Ino, d.depth + 1})
			}
		}
	}
	return s
}

// errNotDirComponent marks a lookup through something that is not a folder:
// for a watch, that path does not exist.
var errNotDirComponent = errors.New("not a folder")

// carryAll keeps prev's whole view when the root itself could not be read.
func carryAll(prev *snapshot, root string, err error) *snapshot {
	s := emptySnapshot()
	if prev != nil {
		s.exists, s.rootDir = prev.exists, prev.rootDir
		for p, e := range prev.entries {
			s.entries[p] = e
		}
	}
	s.failed[root] = fmt.Sprintf("%s: %v", root, err)
	return s
}

// carryBelow copies prev's names below dir into s.
func carryBelow(s, prev *snapshot, dir string) {
	if prev == nil {
		return
	}
	prefix := dir + "/"
	if dir == "/" {
		prefix = "/"
	}
	for p, e := range prev.entries {
		if strings.HasPrefix(p, prefix) && p != dir {
			s.entries[p] = e
		}
	}
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// cleanWatchPath makes a watch path absolute and clean.
func cleanWatchPath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", fmt.Errorf("watch path %q: must be absolute (start with /)", p)
	}
	return path.Clean(p), nil
}
