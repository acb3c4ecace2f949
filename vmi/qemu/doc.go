// Package qemu is the vmi.Target for a live QEMU/KVM guest, reached through
// its QMP socket (`-qmp unix:PATH,server,nowait`).
//
// It owns a small QMP client of its own (JSON lines over a unix socket; the
// protocol is https://www.qemu.org/docs/master/interop/qmp-spec.html), the
// parsers for the HMP text it asks for through human-monitor-command
// (`info registers` for vCPU 0's control registers, `info mtree -f` for the
// guest-physical layout of RAM, `gpa2hva` and `info ramblock` for where RAM
// lives in QEMU) and for /proc/PID/maps (proc(5)), and the two ways to
// reach guest RAM:
//
//   - a memory-backend-file with share=on is mmapped (read-only unless
//     writes were allowed), so a read is a copy from the page cache with no
//     QMP round trip;
//   - any other RAM block (plain -m, memory-backend-ram or memfd, share=off)
//     is read from QEMU's process with process_vm_readv(2), as memflow's
//     QEMU connector does: QEMU's pid from the socket's SO_PEERCRED, each
//     range's host address from HMP gpa2hva (checked against
//     /proc/PID/maps; for a QEMU without gpa2hva, found in the maps by
//     size). One system call per read; it needs the right to ptrace QEMU.
//
// Once the QMP connection closes (QEMU exited, was killed, or quit) every
// read fails with ErrGone: a shared file outlives QEMU and a pid can be
// reused, so neither is trusted after that.
//
// It never writes guest memory unless opened with Options.Writable (the
// user's --allow-write), and then only what a caller writes (write.go): by
// default the file is opened and mapped read-only and QEMU's memory is only
// read. It never writes registers, and the only state-changing QMP commands
// it sends are stop and cont.
package qemu
