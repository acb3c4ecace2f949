package diskmon

import (
	"fmt"
	"time"
)

// Op is what happened to a name.
type Op string

// The events a watch reports.
const (
	OpMkdir    Op = "MKDIR"
	OpRmdir    Op = "RMDIR"
	OpMkfile   Op = "MKFILE" // a new name that is not a folder: file, symlink, hard link, device, FIFO, socket
	OpRmfile   Op = "RMFILE"
	OpRename   Op = "RENAME" // the same inode left OldPath and gained Path in one rescan
	OpWrite    Op = "WRITE"  // a watched file's size grew or its mtime moved
	OpTruncate Op = "TRUNCATE"
	OpChmod    Op = "CHMOD"
	OpChown    Op = "CHOWN"
	// OpError: a watched folder could not be read; Err names the block. The
	// watch keeps its last good listing and goes on.
	OpError Op = "ERROR"
	// OpLost: the tracker fell behind and dropped change records; it rescans
	// at once (Err says how many).
	OpLost Op = "LOST"
)

// FileType is the kind of an inode.
type FileType uint8

// File types, as ext2/3/4 store them.
const (
	TypeUnknown FileType = iota
	TypeFile
	TypeDir
	TypeSymlink
	TypeCharDev
	TypeBlockDev
	TypeFIFO
	TypeSocket
)

var typeNames = [...]string{"unknown", "file", "dir", "symlink", "chardev", "blockdev", "fifo", "socket"}

func (t FileType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Event is one change seen on the disk.
type Event struct {
	Op      Op
	Path    string // full path in the guest's file system, as stored (symlinks not followed)
	OldPath string // RENAME: the name the inode left
	Watch   string // the path of the watch that reported it
	Ino     uint32
	Type    FileType
	Size    uint64
	Mode    uint32 // permission bits (with setuid, setgid, sticky)
	UID     uint32
	GID     uint32
	Links   uint32
	// Target is a symlink's target.
	Target string
	// Hardlink is set on a MKFILE that gave an existing inode another name.
	Hardlink bool
	// WatchEnded is set on the event that ended a watch: its folder was
	// removed or replaced by something that is not a folder.
	WatchEnded bool
	// Time is when the write that revealed the event reached the tap (host
	// clock); Ctime is the inode's change time as the guest wrote it.
	Time  time.Time
	Ctime time.Time
	Err   string // ERROR and LOST
}

// String is the one-line form examples print: "MKDIR: /root/foo".
func (e Event) String() string {
	switch e.Op {
	case OpRename:
		return fmt.Sprintf("%s: %s -> %s", e.Op, e.OldPath, e.Path)
	case OpError, OpLost:
		return fmt.Sprintf("%s: %s: %s", e.Op, e.Path, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Op, e.Path)
}
