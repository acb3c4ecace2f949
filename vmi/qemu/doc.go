// Package qemu is the vmi.Target for a live QEMU/KVM guest, reached through
// its QMP socket (`-qmp unix:PATH,server,nowait`).
//
// It owns a small QMP client of its own (JSON lines over a unix socket; the
// protocol is https://www.qemu.org/docs/master/interop/qmp-spec.html), the
// parsers for the HMP text it asks for through human-monitor-command
// (`info registers` for vCPU 0's control registers, `info mtree -f` for the
// guest-physical layout of RAM), and the mapping of guest RAM: a
// memory-backend-file with share=on is mmapped read-only, so a read is a copy
// from the page cache with no QMP round trip.
//
// It must never write guest memory or registers: the mapping is PROT_READ and
// the only state-changing QMP commands it sends are stop and cont.
package qemu
