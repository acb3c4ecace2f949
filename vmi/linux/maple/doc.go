// Package maple walks a Linux maple tree (lib/maple_tree.c, Linux 6.1 and
// later) held in guest memory: the tree that keeps a process's memory
// mappings (mm_struct.mm_mt, one vm_area_struct per range).
//
// It owns the node format only: the encoded node pointers (mt_mk_node: node
// address in the bits above MAPLE_NODE_MASK, node type in bits 3..6,
// MAPLE_ENODE_NULL in bit 2, and MAPLE_ROOT_NODE in bit 1 of the root, which
// makes the root an xarray-style internal entry), the 256-byte nodes of types maple_leaf_64,
// maple_range_64 and maple_arange_64 with their pivots, slots and metadata
// (include/linux/maple_tree.h), and the kernel's ma_data_end rule for how
// many slots of a node are in use. Where the tree root sits in a struct and
// what the entries point to is the caller's business (vmi/linux).
//
// Reference: https://docs.kernel.org/core-api/maple_tree.html and
// include/linux/maple_tree.h, lib/maple_tree.c of Linux 6.1 and 6.12 (the
// node layout is the same in both). Layouts of 64-bit and 32-bit kernels
// differ only in the pointer size and so in the slot counts (16 and 10 slots
// in range and arange nodes of 8-byte pointers, 32 and 21 of 4-byte ones).
//
// Every node is guest-controlled: the walk is bounded in depth
// (MAPLE_HEIGHT_MAX), in nodes and in entries, never visits a node twice
// (a cycle is an error naming the node), checks that every pivot lies in
// its parent's range and that ranges ascend, and never panics. It only
// reads.
package maple
