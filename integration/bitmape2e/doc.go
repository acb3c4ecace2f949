// Package bitmape2e proves `xascript --qemu QMP --drive NODE` end to end on a
// guest that was started without xascript: a Debian kernel under QEMU whose
// data disk (/dev/vda, virtio-blk) is a plain ext4 or ext2 image file opened
// by QEMU itself, with two QMP sockets (one for xascript, one for the test's
// own queries) and a command port on its second serial line
// (testdata/disk/live-disk-guest.sh).
//
// TestLiveQEMUDiskBitmap (build tag guests, run by `make e2e-qemu`), for each
// file system:
//  1. query-block and query-block-exports are recorded (the "before").
//  2. xascript attaches (scripts/examples/diskwatch.lua -- /root); the guest
//     runs the paper's sequence (mkdir foo; touch dummy; rm bar; sync) and
//     xascript must print exactly the paper's three lines.
//  3. xascript is killed with SIGKILL; QEMU must then hold its leftovers
//     (an export and a bitmap named xascript-PID-…), else the next step
//     proves nothing.
//  4. xascript attaches again: it must say it removed the leftovers, and
//     report a second sequence exactly.
//  5. SIGTERM: xascript must exit with 143, and query-block and
//     query-block-exports must equal the "before" (the image's
//     "actual-size", which the guest's own writes change, left out).
//
// The time from the guest's sync returning (its command's end reaching the
// host) to the event line in xascript's output is logged per sequence; the
// latency figures are measured by BenchmarkLiveQEMUDiskBitmapLatency.
package bitmape2e
