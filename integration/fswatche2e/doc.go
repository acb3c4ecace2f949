// Package fswatche2e proves scripts/examples/fswatch.lua end to end: memory
// and disk views of one folder together, on a live Debian guest under QEMU.
// The guest's data disk is an ext4 image served by the same xascript process
// over NBD (--disk IMG --nbd SOCK), which also reads the guest's memory
// through QMP (--qemu QMP, RAM in a shared memory-backend-file). The guest
// (testdata/fswatch/guest-init.sh) mounts the disk with a 60 s journal commit,
// so a change reaches the disk only at its `sync`, then
//
//   - lists the folder (ls -l): the image's old files enter the dcache,
//     which fswatch must not report as changes;
//   - creates a file and removes it a second later, before any flush:
//     fswatch must flag it MEMORY-ONLY (the dcache showed it, the disk never);
//   - creates a file that a background `sleep` holds open, then syncs:
//     fswatch must report it once with both times (memory first) and its
//     inode, and name that sleep by the pid the guest printed.
//
// Everything compared is what the guest printed about itself (XA-DID lines
// with `ls -i` inode numbers, XA-HELD with the pid). The test (build tag
// guests, TestLiveQEMUFsWatch, run by `make e2e-qemu`) needs QEMU,
// e2fsprogs (mkfs.ext4), python3, the cached Debian kernel (testdata/fetch.sh
// amd64) and the xascript binary ($XASCRIPT_BIN, default bin/xascript).
package fswatche2e
