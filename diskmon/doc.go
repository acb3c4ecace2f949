// Package diskmon turns the block writes a guest sends to its virtual disk
// into file-system events in watched folders: MKDIR, RMDIR, MKFILE, RMFILE,
// RENAME, and for watched files WRITE, TRUNCATE, CHMOD and CHOWN. It is the
// disk half of XenAccess (Payne, Carbone, Lee, 2007, section 4.3), rebuilt for
// today's stacks.
//
// # Pipeline
//
//	tap (diskmon/nbd server, diskmon/tapfifo records) --Change--> Feed (bounded)
//	    (the server behind a unix socket, a kernel NBD device, or both)
//	    --> Tracker: Refresh the on-disk view, re-read every watched folder, diff
//	    --> Event, delivered to each watch's callback (the Lua runtime's event loop)
//
// The tap is on the guest's I/O path and must never wait for the tracker: it
// applies a request to the image, hands the tracker a Change (offset, length,
// kind, time) through a bounded, non-blocking Feed and replies. The tracker
// reads the image itself (through the host's page cache), so it needs no copy
// of the data. When the Feed is full, changes are counted as dropped; the
// tracker then delivers one LOST event ("lost N change records, rescanning")
// and rescans. Since every rescan re-reads the watched folders in full, a lost
// record loses no name: only the order and timing of changes that happened
// between two rescans.
//
// # Which write makes each event
//
// The tracker never asks the guest's kernel: it reads the file system's
// committed on-disk state (diskmon/ext4), so a rootkit in the guest cannot
// hide what reached the disk. "Committed" depends on the file system:
//   - ext3 and ext4 write metadata to the jbd2 journal first. diskmon/ext4
//     overlays the committed transactions of the journal on the home blocks,
//     as e2fsck's recovery would, so an event is reported when the guest
//     writes the transaction's commit block, not at the later checkpoint.
//     A rescan steps through every commit since the last one (the state
//     right after each, CommitView), so a tracker that fell behind still
//     reports a file made in one commit and removed in the next.
//   - ext2 writes directory and inode blocks in place. A rescan runs after
//     the guest's FLUSH (fsync, sync) or, without one, after the disk has
//     been quiet for a short period, so that a half-written update (a new
//     directory entry whose inode block is not yet written) is not reported.
//
// The Time of an event is the host time at which the last write of the batch
// that revealed it reached the tap (the commit block, the flush); Ctime is the
// guest's own timestamp on the inode, which the guest controls.
//
// # Sources
//
// The NBD server (diskmon/nbd) is our own: go-nbd v0.3.2, the one Go
// library that served QEMU here, has no FLUSH, FUA, TRIM or WRITE_ZEROES,
// and a disk that drops a FLUSH loses data the guest was told was durable.
// The protocol is short (github.com/NetworkBlockDevice/nbd doc/proto.md).
// It serves QEMU over a unix socket, or the host kernel's own NBD device
// (diskmon/kernelnbd: /dev/nbdN set up by ioctls, which Xen's blkback
// exports to a domU as `phy:`). XenAccess's tapfifo records
// (diskmon/tapfifo) and a before/after pair of images (Compare) feed the
// same tracker; and what the server serves can be written out as tapfifo
// records (MonitorOptions.TapFIFOOut, tapout.go) for another monitor.
//
// # Order
//
// A rescan can reveal several changes at once (one jbd2 transaction holds
// every change of a few seconds). They are ordered by the guest's inode
// timestamps: creation time (ext4's crtime, else ctime) for new names, the
// change time of the freed inode for removals, ties broken by inode number,
// and a folder is always created before its contents and removed after
// them.
//
// # The guest is the attacker
//
// Every byte of the disk comes from the guest. Walks are bounded (entries per
// folder, folders per recursive watch, depth), a folder reached twice is
// refused, and a folder that cannot be read (corrupt, or lying counts) gives
// an ERROR event naming the block while its last good listing is kept, so
// corruption never shows up as a flood of removals.
package diskmon
