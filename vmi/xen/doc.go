// Package xen is the live Xen target: a running domain's memory and vCPU
// state, read from a privileged domain (dom0) through /dev/xen/privcmd.
//
// It is pure Go (no libxenctrl, no cgo) so that one static binary runs in a
// bare dom0. What it speaks:
//
//   - hypercalls through IOCTL_PRIVCMD_HYPERCALL (Linux
//     include/uapi/xen/privcmd.h): xen_version to learn the hypervisor's
//     version, and domctl (xen/include/public/domctl.h) for getdomaininfo,
//     getvcpucontext, gethvmcontext_partial and pause/unpausedomain;
//   - foreign mappings through IOCTL_PRIVCMD_MMAPBATCH_V2 on an mmap of the
//     privcmd fd, read-only, in batches kept in a bounded LRU of mapped
//     chunks (frames.go);
//   - xenstore (xen/include/public/io/xs_wire.h) over xenstored's socket or
//     /dev/xen/xenbus, to turn a domain name into its id.
//
// The domctl ABI changes between Xen releases (its interface_version and
// struct layouts); abi.go holds one table per supported release, and a
// hypervisor whose version has no table is refused with an error naming it.
//
// Guest kinds: PV guests run on machine frames, and their page tables hold
// machine frame numbers, so for a PV domain this target's "physical"
// addresses are machine addresses (what CR3 and the PTEs name); its memory
// map is the set of machine frames the guest's p2m lists (p2m.go). PVH and
// HVM guests are auto-translated: physical addresses are guest frames, as on
// bare metal.
//
// The package never writes guest memory on its own: the frames it reads are
// mapped PROT_READ. Only a target opened with Options.Writable (the user's
// --allow-write) writes, and only what a caller writes, each frame mapped
// writable for the write alone (write.go).
package xen
