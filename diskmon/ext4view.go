package diskmon

import (
	"time"

	"github.com/xascript/xascript/diskmon/ext4"
)

// ext4View adapts diskmon/ext4 to the tracker's FSView.
type ext4View struct{ fs *ext4.FS }

// NewExt4View gives the tracker's view of an ext2/3/4 file system.
func NewExt4View(fs *ext4.FS) FSView { return ext4View{fs} }

func (v ext4View) Refresh() error                     { return v.fs.Refresh() }
func (v ext4View) Lookup(path string) (uint32, error) { return v.fs.Lookup(path) }
func (v ext4View) ReadLink(ino uint32) (string, error) {
	return v.fs.ReadLink(ino)
}

// Commits, Pin and Unpin let the tracker step through the journal's
// transactions one commit at a time (see ext4.FS.Pin).
func (v ext4View) Commits(after uint32, max int) []uint32 { return v.fs.Commits(after, max) }
func (v ext4View) Pin(seq uint32) error                   { return v.fs.Pin(seq) }
func (v ext4View) Unpin()                                 { v.fs.Unpin() }
func (v ext4View) Newest() (uint32, bool)                 { return v.fs.LastCommitted() }

func (v ext4View) ReadDir(ino uint32) ([]DirEntry, error) {
	list, err := v.fs.ReadDir(ino)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, len(list))
	for i, e := range list {
		out[i] = DirEntry{Name: e.Name, Ino: e.Ino}
	}
	return out, nil
}

func (v ext4View) Stat(ino uint32) (Stat, error) {
	in, err := v.fs.Inode(ino)
	if err != nil {
		return Stat{}, err
	}
	return Stat{Ino: ino, Type: ext4Type(in.Type()), Mode: uint32(in.Mode) & 0o7777, UID: in.UID, GID: in.GID,
		Size: in.Size, Links: uint32(in.Links), Mtime: in.Mtime, Ctime: in.Ctime, Crtime: in.Crtime,
		Dtime: dtime(in.Dtime), Generation: in.Generation}, nil
}

func ext4Type(t ext4.FileType) FileType {
	switch t {
	case ext4.TypeRegular:
		return TypeFile
	case ext4.TypeDir:
		return TypeDir
	case ext4.TypeSymlink:
		return TypeSymlink
	case ext4.TypeCharDev:
		return TypeCharDev
	case ext4.TypeBlockDev:
		return TypeBlockDev
	case ext4.TypeFIFO:
		return TypeFIFO
	case ext4.TypeSocket:
		return TypeSocket
	}
	return TypeUnknown
}

func dtime(d uint32) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Unix(int64(d), 0)
}
