package qemu

import "github.com/xascript/xascript/vmi"

// Writes reach guest RAM where reads come from: a shared RAM file mapped
// writable (the guest sees the store at once: QEMU maps the same file
// shared), or QEMU's process memory through process_vm_writev(2), under the
// same ptrace permission as reads. Pages handed out by PhysPage are views
// of the file mapping and see a write; the generation moves after every
// write, so translations through a page table the write changed are walked
// again.
//
// QEMU's own caches of guest memory are not told: code that TCG already
// translated keeps running in its old form until its translation is
// dropped. Data (what introspection usually changes) is seen at once.

var _ vmi.Writer = (*Target)(nil)

// Writable implements vmi.Writer.
func (t *Target) Writable() error {
	if err := t.live(); err != nil {
		return err
	}
	if !t.opt.Writable {
		return vmi.Detailed(nil, vmi.ErrReadOnly, "qemu %s: guest RAM was opened read-only", t.sock)
	}
	return nil
}

// WritePhys implements vmi.Writer: it stores buf at guest-physical pa.
// Every byte must be RAM: a write that reaches a hole fails with
// vmi.ErrNotPresent before any byte is stored.
func (t *Target) WritePhys(buf []byte, pa uint64) error {
	if err := t.Writable(); err != nil {
		return &vmi.PhysError{Addr: pa, Err: err}
	}
	for pass := 0; pass < 2; pass++ {
		p, a := buf, pa
		for len(p) > 0 {
			i := t.region(a)
			if i < 0 {
				return &vmi.PhysError{Addr: a, Err: vmi.ErrNotPresent}
			}
			r := &t.regions[i]
			n := int(min(uint64(len(p)), r.End-a))
			if pass == 1 {
				if r.data != nil {
					copy(r.data[a-r.Start:], p[:n])
				} else if err := t.proc.write(p[:n], r.hva+(a-r.Start)); err != nil {
					t.gen.Bump() // an earlier region may have been written
					return &vmi.PhysError{Addr: a, Err: t.procErr(err, r.hva+(a-r.Start))}
				}
			}
			p = p[n:]
			a += uint64(n)
		}
	}
	t.gen.Bump()
	return nil
}
