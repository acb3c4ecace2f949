package diskmon

import "time"

// FSView is a file system's committed on-disk state as the tracker reads it.
// diskmon/ext4 provides one (NewExt4View); tests use fakes. Calls are never
// concurrent: the tracker serialises them.
type FSView interface {
	// Refresh catches up with what was written since the last call (new
	// journal commits, a moved journal tail, changed group descriptors).
	Refresh() error
	// Lookup resolves an absolute path without following symlinks. A missing
	// component gives an error that errors.Is(err, fs.ErrNotExist).
	Lookup(path string) (uint32, error)
	// ReadDir lists a folder's entries, without "." and "..".
	ReadDir(ino uint32) ([]DirEntry, error)
	Stat(ino uint32) (Stat, error)
	ReadLink(ino uint32) (string, error)
}

// DirEntry is one name in a folder.
type DirEntry struct {
	Name string
	Ino  uint32
}

// Stat is what the tracker knows of an inode.
type Stat struct {
	Ino    uint32
	Type   FileType
	Mode   uint32 // permission bits
	UID    uint32
	GID    uint32
	Size   uint64
	Links  uint32
	Mtime  time.Time
	Ctime  time.Time
	Crtime time.Time // zero where the file system does not record it
	// Dtime is when a freed inode was deleted (ext2/3/4 record it, in
	// seconds); zero for a live inode.
	Dtime time.Time
	// Generation changes when the inode number is given to a new file
	// (ext2/3/4 i_generation): the same number with another generation is
	// another file.
	Generation uint32
}

// CommitView is implemented by views of journaled file systems (ext3,
// ext4): the state right after each commit still in the journal can be
// read, so a tracker that fell behind the guest sees every committed change,
// one commit at a time, instead of only their sum.
type CommitView interface {
	// Newest is the newest committed transaction (false: none yet).
	Newest() (seq uint32, ok bool)
	// Commits lists the committed transactions newer than after, oldest
	// first; at most max (the newest ones).
	Commits(after uint32, max int) []uint32
	// Pin makes reads show the state right after commit seq; Unpin goes
	// back to the newest state.
	Pin(seq uint32) error
	Unpin()
}

// tidAfter compares jbd2 transaction ids, which wrap around.
func tidAfter(a, b uint32) bool { return int32(a-b) > 0 }
