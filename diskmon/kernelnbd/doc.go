// Package kernelnbd drives a Linux kernel NBD device (/dev/nbdN, nbd.ko) with
// xascript's own NBD server behind it, so that a block device in the host
// (Xen's dom0) is the guest's disk and every request passes through the tap:
// Xen's blkback exports /dev/nbdN to a domU as `phy:`.
//
// No nbd-client is involved. Attach does what nbd-client does with the
// ioctls of include/uapi/linux/nbd.h (Linux 6.1; the numbers are _IO(0xab, n)
// and have not changed since 2.6): NBD_SET_BLKSIZE and NBD_SET_SIZE_BLOCKS,
// NBD_SET_FLAGS with the server's transmission flags (so the driver sends
// FLUSH, FUA, TRIM and WRITE_ZEROES), NBD_SET_SOCK with one end of a unix
// socketpair, NBD_SET_TIMEOUT (IOTimeout: a request unanswered that long
// fails, and the connection with it, where the driver would otherwise wait
// for ever on a server that hangs), and NBD_DO_IT, which blocks in the kernel
// until the device is disconnected. The other end of the pair is served by
// nbd.Server.ServeTransmission: the driver skips the handshake (it was told
// the size and flags by ioctl) and speaks the transmission phase with simple
// replies from the first byte.
//
// NBD_DO_IT waits with wait_event_interruptible: a signal delivered to the
// thread inside it makes the driver shut the socket down, which would fail
// the guest's disk. So the ioctl runs on a goroutine locked to its own OS
// thread with every signal blocked there; process-directed signals (SIGTERM,
// Ctrl-C, the Go runtime's own) go to the other threads.
//
// Close is the clean end: fsync of the device (the host's page cache of it,
// then a FLUSH), NBD_DISCONNECT (the driver sends NBD_CMD_DISC; the server
// answers what it has read and closes its end), then NBD_CLEAR_SOCK, and the
// device is free for the next user. If the process is killed instead, the
// kernel drops the socket when the last file descriptor closes and the
// device fails its I/O and is freed too (what was acknowledged after a FLUSH
// is on the image).
package kernelnbd
