// Package ext4 is a read-only decoder of ext2, ext3 and ext4 filesystems
// for the disk tracker of diskmon: it answers "what does this directory,
// inode, symlink or file hold right now" from the committed on-disk state,
// including what so far is only in the jbd2 journal.
//
// It owns the on-disk formats only. It never writes to the device, never
// trusts a byte of it (a guest controls all of them), and never asks the
// guest's kernel anything. Every walk is bounded and loops are detected:
// extent trees (depth <= 5, entries <= the header's max, each node visited
// once), indirect maps (each block once, at most 65536 map blocks per
// file), directories (<= 1 GiB, <= 10 million entries, a block reached
// twice is a loop), htree roots (levels, count/limit), inline data and
// xattr sizes, journal transactions (the replay window never exceeds the
// log) and tags (what fits in a descriptor block). Corrupt metadata comes
// back as a *CorruptError naming the block; nothing panics (fuzzed).
//
// # The journal overlay
//
// ext3/4 write metadata to the journal first; the home blocks follow at a
// checkpoint, seconds to minutes later. So that a tracker sees a change at
// its commit, every metadata (and data) read goes through an overlay that
// holds, for each home block, the journal block of its newest committed
// copy, unless a revoke record of that or a later transaction cancels it:
// exactly what e2fsck's (and the kernel's) recovery would write now.
// Like do_one_pass in fs/jbd2/recovery.c, the scan starts at the journal
// superblock's s_start with s_sequence and follows transactions while the
// sequence numbers follow and their blocks verify: a descriptor or revoke
// block whose checksum fails, or a commit block whose checksum fails,
// ends the replay (an uncommitted or torn transaction is never shown); a
// data block whose tag checksum fails is skipped, as recovery skips it.
// Checksum v1 (COMPAT_CHECKSUM, crc32 over a whole transaction) is not
// verified, and the fast-commit area is not replayed: changes that only a
// fast commit holds appear at the next full commit.
//
// Refresh keeps the overlay and reads only journal blocks after the last
// valid commit. When the journal superblock's s_start/s_sequence moved (a
// checkpoint wrote the old transactions home), the transactions before the
// new tail leave the overlay without a rescan; any other change of the
// journal superblock rebuilds the overlay from s_start. The overlay maps
// home block -> journal block only (no data), so its memory is bounded by
// the journal's length.
//
// # Per-commit views
//
// A tracker that falls behind a burst of syncs would see only the newest
// state and miss a file that one transaction created and the next removed.
// Commits lists the committed transactions in the window and Pin(seq)
// shows the filesystem as e2fsck's replay up to seq would leave it: per
// home block the newest copy with sequence <= seq, cancelled by a revoke
// with a sequence from that copy's up to seq (jbd2_journal_test_revoke).
// For this the overlay also keeps, per home block journaled more than
// once, the superseded copies and revoke sequences still in the window,
// oldest first; they leave with their transaction at a checkpoint, so the
// bound above holds (one entry per journal tag or revoke record at most).
// A pinned view is exact for what was journaled; blocks never journaled in
// the window (file data in ordered mode, home blocks the kernel already
// wrote and checkpointed) read from home in every view. In ordered mode,
// the default, everything the tracker reads to walk the tree is journaled
// metadata: directory blocks, inodes, extent and index blocks, block maps,
// bitmaps, group descriptors, the superblock.
//
// # Specifications
//
//   - Superblock: https://docs.kernel.org/filesystems/ext4/super.html
//   - Group descriptors (32/64-byte, meta_bg, sparse_super/sparse_super2):
//     https://docs.kernel.org/filesystems/ext4/group_descr.html and
//     https://docs.kernel.org/filesystems/ext4/overview.html
//   - Inodes (sizes, i_extra_isize, timestamps, flags, checksum):
//     https://docs.kernel.org/filesystems/ext4/inodes.html
//   - Block maps and extent trees: https://docs.kernel.org/filesystems/ext4/ifork.html
//   - Directories (linear, htree, checksum tail, inline):
//     https://docs.kernel.org/filesystems/ext4/directory.html
//   - Inline data: https://docs.kernel.org/filesystems/ext4/inlinedata.html
//   - Extended attributes (system.data in the inode body):
//     https://docs.kernel.org/filesystems/ext4/attributes.html
//   - jbd2 journal: https://docs.kernel.org/filesystems/ext4/journal.html, with
//     the replay rules of fs/jbd2/recovery.c (shared with e2fsprogs'
//     e2fsck/recovery.c).
//
// # What is checked against what
//
// Tests build images with mkfs.ext2/3/4 -d in 14 feature variants and
// compare every directory, inode, file and symlink with debugfs; the
// journal fixtures in testdata/ext4 were left by a real Linux 6.1 kernel
// with committed transactions not yet checkpointed (make-fixtures.sh), and
// the overlay is compared block by block with e2fsprogs' replay of them.
package ext4
