// Package kwalk walks the Linux kernel's linked containers in guest memory:
// circular lists (struct list_head), hash lists (hlist, hlist_nulls),
// NULL-terminated chains of structs (vm_area_struct.vm_next before 6.1),
// red-black trees (struct rb_root, in order) and XArrays (struct xarray,
// and the IDR built on it). It yields the addresses of the nodes (or, for
// an XArray, the entries and their indexes); turning a node into the
// struct that contains it is the caller's business.
//
// Every byte it reads is the guest's, and the guest may be hostile: every
// walk is bounded by a node limit, refuses to visit a node twice (a cycle),
// bounds its depth (trees), and ends with an error naming the address where
// it stopped; it never panics, hangs or grows without bound.
//
// Layouts follow the kernel's headers: include/linux/types.h (list_head,
// hlist_head, hlist_node), include/linux/list_nulls.h (hlist_nulls: the end
// of a chain is an odd "nulls" value), include/linux/rbtree_types.h
// (rb_node: __rb_parent_color, rb_right, rb_left) and include/linux/xarray.h
// with lib/xarray.c (entry encoding: node pointers and sibling/retry/zero
// entries are "internal" entries with the low bits 10).
//
// Walks are iterators in the bufio.Scanner style: Next reports whether
// there is one more node, Err says why a walk ended early.
package kwalk
