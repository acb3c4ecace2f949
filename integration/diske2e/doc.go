// Package diske2e proves xascript's disk monitor end to end: a Debian guest
// under QEMU whose data disk (/dev/vda, virtio-blk) is an ext2, ext3 or ext4
// image served over NBD by the tap under test, running a known sequence of
// file operations (testdata/disk/guest-init.sh) and printing what it did.
//
// The tests (build tag disk, run by `make e2e-disk`) need QEMU, qemu-nbd,
// e2fsprogs and the cached Debian kernel (testdata/fetch.sh amd64). The tap is
// chosen with XA_DISK_TAP:
//
//	xascript (default)  $XASCRIPT_BIN scripts/examples/diskwatch.lua
//	                    --disk IMG --nbd SOCK -- $XA_DISK_WATCH
//	                    (XA_DISK_WATCH default "-r /root": a recursive watch);
//	                    its stdout is the event list, one event a line
//	qemu-nbd            qemu-nbd -f raw -t -k SOCK IMG: a disk without events,
//	                    to prove the harness, the guest side and fsck alone
//
// # What the guest did
//
// The guest prints every operation as "XA-DID STEP OP PATH", in the order it
// made them; STEP counts the syncs before the operation, so the operations of
// one step reach the disk together, when the sync that ends the step returns.
// A loop over many files prints one "XA-DID-RANGE STEP OP PREFIX FIRST LAST"
// line, which stands for OP PREFIXi for i = FIRST..LAST. The vocabulary:
//
//	MKDIR p           mkdir
//	MKFILE p          a new empty regular file (touch, : >)
//	RMFILE p          unlink of a non-directory: a file, a symlink, or one
//	                  name of a hard-linked file
//	RMDIR p           rmdir
//	RENAME a -> b     mv of a file or a folder, within a folder or across
//	LINK p = q        ln q p: p is a new name of q's inode (a hard link)
//	SYMLINK p = t     ln -s t p
//
// # The comparison rule (what the tracker's output must be)
//
// Each event line is "OP: PATH", or "RENAME: OLD -> NEW". Each guest operation
// inside a watched folder (XA_DISK_WATCH; with -r every folder under it)
// expects exactly one event: MKDIR p → "MKDIR: p", MKFILE p → "MKFILE: p",
// RMFILE p → "RMFILE: p", RMDIR p → "RMDIR: p", RENAME a -> b →
// "RENAME: a -> b", LINK p = q → "LINK: p" (a new name for an inode that
// already had one, whatever its type), SYMLINK p = t → "SYMLINK: p". A
// RENAME is expected when either side is watched. Operations outside the
// watched folders (the guest's /other) expect no event. So the 10,000-file
// folder gives 10,000 MKFILE events and then 10,000 RMFILE events, and a new
// folder tree made in one step gives an event for every entry in it.
//
// Events are compared folder by folder (a path's folder is its parent; a
// RENAME belongs to both its folders). In each folder the events must come
// step by step in the guest's order: the events of step k all before those of
// step k+1. Inside one step the order is free (the tracker sees one journal
// commit, or for ext2 one batch of writes, and cannot know the order the guest
// made them in) — except step 1, the paper's Program 5.2, whose three lines
// must come exactly as the paper prints them: MKDIR /root/foo, MKFILE
// /root/dummy, RMFILE /root/bar. Every expected event must appear once, and
// no other namespace event may appear. Attribute events (WRITE, TRUNCATE,
// CHMOD, CHOWN) are not listed by the guest and are ignored; any other
// "OP: ..." line (an error or lost-events report) fails the test.
//
// # Checks made whatever the tap
//
//   - the guest printed no XA-FAIL and reached XA-DONE before the deadline;
//   - the guest's list, replayed on the tree read from the image before the
//     boot, gives exactly the tree on the image after it (read with
//     debugfs), hard links sharing an inode and symlinks holding their
//     targets; the 10,000-entry folder is an htree (EXT4_INDEX_FL);
//   - e2fsck -fn of the image after the guest shut down is clean.
//
// # Faults
//
// TestDiskKill: the guest writes files of random content and prints
// "XA-SYNCED NAME SIZE SHA256" once fsync of the file and of its folder
// returned; the host SIGKILLs the tap at a random moment, then QEMU; e2fsck
// -E journal_only replays the journal (what the next mount would do), and
// every file the guest reported must then be on the image with that size and
// hash (debugfs dump). Then e2fsck -fy must be able to repair what the crash
// left (status 0 or 1). The files are checked before that repair, as a mount
// would see them, because a repair writes to the image (it clears "illegal"
// block numbers in what a stale inode claims as an indirect block, and on a
// crashed ext2 that block may by now hold a synced file's data). How many
// synced files differ after the repair is reported apart ("broken by -fy"),
// not counted as lost. (In a first run with qemu-nbd that read the files only
// after e2fsck -fy, one synced ext2 file of 131 had the right size and other
// content; not seen again with the files read before and after the repair.)
// XA_KILL_TRIALS trials (default 21), the filesystems in turn; xascript
// watches the folder being written (XA_KILL_WATCH, default "-r /kill").
package diske2e
