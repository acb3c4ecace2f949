// Package btfmem finds the kernel's own BTF in guest memory, so struct
// layouts can come from the guest itself when the user has no vmlinuz.
//
// A kernel built with CONFIG_DEBUG_INFO_BTF links its type information into
// the image between __start_BTF and __stop_BTF (the .BTF output section that
// include/asm-generic/vmlinux.lds.h places after .rodata, 4-byte aligned)
// and serves it unchanged as /sys/kernel/btf/vmlinux. The blob is the BTF
// wire format (https://docs.kernel.org/bpf/btf.html): a struct btf_header
// (magic 0xeB9F, version 1, hdr_len, then offsets and lengths of the type and
// string sections, relative to the end of the header), the type records,
// then the NUL-separated strings.
//
// Find scans a window of physical memory for that header and returns the
// bytes of the one blob that passes the checks the kernel itself applies to
// its vmlinux BTF (kernel/bpf/btf.c: btf_parse_hdr, btf_check_sec_info,
// btf_parse_str_sec) plus a decode of the first types. Module BTF (split
// BTF, whose strings continue the kernel's) lives in module memory, not in
// the image, and fails those checks: its string section does not start with
// NUL and its names point past its own strings. So do the header copies the
// kernel keeps in each struct btf (one per module and one for vmlinux, found
// in slab memory near the image on the test guests): what follows such a
// copy is not a type section. Decoding the types is left to package btfsrc
// (btfsrc.Parse on the returned bytes).
//
// Memory is hostile: a header is only a claim. Every length is bounded
// (a blob is at most 64 MiB; Debian's are 4–6 MiB), every read is bounded by
// the search window, unreadable stretches (holes) are skipped, and nothing a
// guest writes can make Find panic or allocate more than one blob's worth.
// Find never decodes more than the first types of a candidate.
package btfmem
