package btfmem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/xascript/xascript/vmi"
)

// Bounds set against hostile memory. Debian's vmlinux BTF is 4–6 MiB; the
// largest kernels' stay well under 64 MiB.
const (
	// MaxBlob is the largest BTF blob Find accepts.
	MaxBlob = 64 << 20
	// hdrLen is sizeof(struct btf_header) today; newer kernels may grow the
	// header (the kernel accepts a longer one whose extra bytes are zero).
	minHdrLen = 24
	maxHdrLen = 256
	// maxGap bounds the slack before the type section and between types and
	// strings: the kernel allows none (btf_check_sec_info), but a future
	// header may describe a small section in between.
	maxGap = 4096
	// probeTypes is how many leading type records must decode.
	probeTypes = 64
	// chunk is how much memory is searched per read: big reads keep the
	// io.ReaderAt overhead negligible against bytes.Index.
	chunk = 8 << 20
	page  = 4096
	// candidateBudget bounds the bytes read for candidates whose header
	// passes: real memory holds a handful (module BTF copies); memory full
	// of forged headers must not make Find read gigabytes.
	candidateBudget = 4 * MaxBlob
	maxCandidates   = 1 << 16
)

// prefix is the first word of a struct btf_header: magic 0xeB9F
// little-endian, version 1, flags 0. x86 is little-endian; a big-endian
// blob would not be this kernel's.
var prefix = []byte{0x9f, 0xeb, 0x01, 0x00}

// header is a struct btf_header (include/uapi/linux/btf.h).
type header struct {
	hdrLen, typeOff, typeLen, strOff, strLen uint32
}

// total is the blob's length: header plus both sections. Sections a longer
// header may describe beyond the string table are not included.
func (h header) total() uint64 {
	return uint64(h.hdrLen) + max(uint64(h.typeOff)+uint64(h.typeLen), uint64(h.strOff)+uint64(h.strLen))
}

// parseHeader checks b (at least minHdrLen bytes, starting with prefix)
// the way the kernel checks its own BTF before using it (btf_parse_hdr,
// btf_check_sec_info), with slack only where a newer header could need it.
func parseHeader(b []byte) (header, error) {
	if len(b) < minHdrLen || !bytes.HasPrefix(b, prefix) {
		return header{}, errors.New("no BTF header magic")
	}
	le := binary.LittleEndian
	h := header{le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[16:]), le.Uint32(b[20:])}
	switch {
	case h.hdrLen < minHdrLen || h.hdrLen > maxHdrLen || h.hdrLen%4 != 0:
		return h, fmt.Errorf("header length %d", h.hdrLen)
	case h.typeOff%4 != 0 || h.typeOff > maxGap:
		return h, fmt.Errorf("type section offset %#x", h.typeOff)
	case h.typeLen < typeHeaderLen || h.typeLen%4 != 0:
		// Every type record is a multiple of 4 bytes; a kernel built with
		// BTF has tens of thousands of them.
		return h, fmt.Errorf("type section length %#x", h.typeLen)
	case uint64(h.strOff) < uint64(h.typeOff)+uint64(h.typeLen) ||
		uint64(h.strOff)-(uint64(h.typeOff)+uint64(h.typeLen)) > maxGap:
		// pahole and libbpf write the types, then the strings, back to back.
		return h, fmt.Errorf("string section offset %#x after types [%#x,+%#x)", h.strOff, h.typeOff, h.typeLen)
	case h.strLen < 2:
		return h, fmt.Errorf("string section length %d", h.strLen)
	case h.total() > MaxBlob:
		return h, fmt.Errorf("blob of %d bytes exceeds %d", h.total(), MaxBlob)
	}
	return h, nil
}

// Type records (include/uapi/linux/btf.h): a 12-byte struct btf_type, then
// kind-specific data.
const (
	typeHeaderLen = 12
	kindMax       = 19 // BTF_KIND_ENUM64
	// infoMask is BTF_INFO_MASK: vlen (bits 0-15), kind (24-28), kind_flag
	// (31). The kernel rejects a type with any other bit set.
	infoMask = 0x9f00ffff
)

// dataLen is the length of the data after a type header of kind k with vlen
// entries, or false for a kind this package does not know.
func dataLen(k, vlen uint32) (uint64, bool) {
	switch k {
	case 1, 14, 17: // INT, VAR, DECL_TAG
		return 4, true
	case 3: // ARRAY
		return 12, true
	case 4, 5, 15, 19: // STRUCT, UNION, DATASEC, ENUM64
		return 12 * uint64(vlen), true
	case 6, 13: // ENUM, FUNC_PROTO
		return 8 * uint64(vlen), true
	case 2, 7, 8, 9, 10, 11, 12, 16, 18: // PTR FWD TYPEDEF VOLATILE CONST RESTRICT FUNC FLOAT TYPE_TAG
		return 0, true
	}
	return 0, false
}

// validate checks a whole candidate blob: the header again, the string
// table's framing (btf_parse_str_sec: a base BTF's strings start and end with
// NUL), and that the first types decode with names that start strings of
// this table. Split (module) BTF fails here: its strings continue the
// kernel's, so they do not start with NUL and its name offsets lie beyond
// its own table.
func validate(raw []byte) (header, error) {
	h, err := parseHeader(raw)
	if err != nil {
		return h, err
	}
	if uint64(len(raw)) < h.total() {
		return h, fmt.Errorf("blob truncated to %d of %d bytes", len(raw), h.total())
	}
	body := raw[h.hdrLen:]
	types := body[h.typeOff : h.typeOff+h.typeLen]
	strs := body[h.strOff : h.strOff+h.strLen]
	if strs[0] != 0 || strs[len(strs)-1] != 0 {
		return h, errors.New("string section is not NUL-framed (split BTF of a module?)")
	}
	le := binary.LittleEndian
	off := uint64(0)
	for i := 0; i < probeTypes && off < uint64(len(types)); i++ {
		if uint64(len(types))-off < typeHeaderLen {
			return h, fmt.Errorf("type %d: header truncated", i+1)
		}
		nameOff, info := le.Uint32(types[off:]), le.Uint32(types[off+4:])
		if info&^infoMask != 0 {
			return h, fmt.Errorf("type %d: info %#x has reserved bits", i+1, info)
		}
		k, vlen := info>>24&0x1f, info&0xffff
		n, ok := dataLen(k, vlen)
		if !ok || k == 0 || k > kindMax {
			return h, fmt.Errorf("type %d: kind %d", i+1, k)
		}
		if nameOff >= h.strLen || (nameOff > 0 && strs[nameOff-1] != 0) {
			return h, fmt.Errorf("type %d: name offset %#x is not a string of this table", i+1, nameOff)
		}
		off += typeHeaderLen + n
		if off > uint64(len(types)) {
			return h, fmt.Errorf("type %d: data overruns the type section", i+1)
		}
	}
	return h, nil
}

// Find locates the vmlinux BTF blob in kernel image memory and returns its
// raw bytes (header + types + strings).
// img reads guest-physical memory from some base (offset 0 = that base); size
// bounds the search.
//
// The returned off is where the blob starts (i.e. __start_BTF's physical
// address minus the base). Stretches img cannot read (holes) are skipped.
// Without a blob the error wraps vmi.ErrNotFound; when memory holds more
// forged headers than the bounds allow, vmi.ErrLimit. If several valid
// blobs are present (a copy of the kernel's, say), the largest wins: the
// vmlinux BTF is the largest BTF in a system, and on a tie the lowest
// address, where the image is.
func Find(img io.ReaderAt, size int64) (raw []byte, off int64, err error) {
	if size < 0 {
		return nil, 0, fmt.Errorf("btfmem: negative search size %d: %w", size, vmi.ErrFormat)
	}
	var (
		best       []byte
		bestOff    int64
		candidates int
		budget     = int64(candidateBudget)
		rejections []string // the first ones, for the error's details
		rejected   int
		skipTo     int64 // the interior of an accepted blob is not searched
	)
	// Each read overlaps the next by len(prefix)-1 bytes so a header that
	// straddles two reads is seen; matches are taken only below pos+chunk.
	buf := make([]byte, min(int64(chunk+len(prefix)-1), size))
	for pos := int64(0); pos < size; pos += chunk {
		n := min(int64(len(buf)), size-pos)
		b := buf[:n]
		readSkippingHoles(img, b, pos)
		limit := min(int64(chunk), n) // match starts handled in this round
		for i := int64(0); i < limit; {
			j := int64(bytes.Index(b[i:], prefix))
			if j < 0 || i+j >= limit {
				break
			}
			m := i + j
			i = m + 1
			at := pos + m
			if at%4 != 0 || at < skipTo {
				continue // .BTF is 4-byte aligned (vmlinux.lds.h: ALIGN(4))
			}
			if candidates++; candidates > maxCandidates {
				return nil, 0, fmt.Errorf("btfmem: more than %d BTF-like headers in %#x bytes: %w",
					maxCandidates, size, vmi.ErrLimit)
			}
			blob, why := candidate(img, size, at, b[m:], &budget)
			if blob == nil {
				if budget < 0 {
					return nil, 0, fmt.Errorf("btfmem: read %d bytes of BTF-like candidates without finding the kernel's: %w",
						candidateBudget, vmi.ErrLimit)
				}
				if rejected++; len(rejections) < vmi.MaxDetails {
					rejections = append(rejections, fmt.Sprintf("BTF-like header at offset %#x: %s", at, why))
				}
				continue
			}
			skipTo = at + int64(len(blob))
			if len(blob) > len(best) {
				best, bestOff = blob, at
			}
		}
	}
	if best == nil {
		// The message is what a user reads when a script asks for a
		// type: one short line; rejected look-alikes are details.
		if rejected == 0 {
			return nil, 0, vmi.Detailed(nil, vmi.ErrNotFound,
				"no BTF in %#x bytes of kernel memory (kernel built without CONFIG_DEBUG_INFO_BTF?)", size)
		}
		if rejected > len(rejections) {
			rejections = append(rejections, fmt.Sprintf("(and %d more)", rejected-len(rejections)))
		}
		return nil, 0, vmi.Detailed(rejections, vmi.ErrNotFound,
			"no BTF in %#x bytes of kernel memory (%d BTF-like headers rejected; kernel built without CONFIG_DEBUG_INFO_BTF?)",
			size, rejected)
	}
	return best, bestOff, nil
}

// candidate checks the header at off (whose first bytes are in head, as far
// as the current read reaches), reads the whole blob it claims and validates
// it. It returns the blob, or nil and why not. budget is charged for blob
// reads and goes negative when exhausted.
func candidate(img io.ReaderAt, size, off int64, head []byte, budget *int64) ([]byte, string) {
	var hb [minHdrLen]byte
	if len(head) >= minHdrLen {
		copy(hb[:], head)
	} else if err := readExact(img, hb[:], off, size); err != nil {
		return nil, err.Error()
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		return nil, err.Error()
	}
	total := int64(h.total())
	if total > size-off {
		return nil, fmt.Sprintf("blob of %d bytes runs past the end of the search window", total)
	}
	// Two one-byte reads reject most impostors (module BTF, the header
	// copies in the kernel's struct btf) before the whole blob is read.
	strs := off + int64(h.hdrLen) + int64(h.strOff)
	var first, last [1]byte
	if err := readExact(img, first[:], strs, size); err != nil {
		return nil, err.Error()
	}
	if err := readExact(img, last[:], strs+int64(h.strLen)-1, size); err != nil {
		return nil, err.Error()
	}
	if first[0] != 0 || last[0] != 0 {
		return nil, "string section is not NUL-framed (split BTF of a module?)"
	}
	if *budget -= total; *budget < 0 {
		return nil, "candidate budget exhausted"
	}
	raw := make([]byte, total)
	if err := readExact(img, raw, off, size); err != nil {
		return nil, err.Error()
	}
	if _, err := validate(raw); err != nil {
		return nil, err.Error()
	}
	return raw, ""
}

// readExact fills p from img at off, all of it or an error.
func readExact(img io.ReaderAt, p []byte, off, size int64) error {
	if off < 0 || int64(len(p)) > size-off {
		return fmt.Errorf("read [%#x,+%#x) outside the %#x-byte window", off, len(p), size)
	}
	n, err := img.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read [%#x,+%#x): %w", off, len(p), err)
}

// readSkippingHoles fills b from img at off; what cannot be read (a hole in
// the guest's memory map, the end of the reader) reads as zeros, which hold
// no header. A failed big read is retried page by page so one hole does not
// hide the rest of the chunk.
func readSkippingHoles(img io.ReaderAt, b []byte, off int64) {
	n, err := img.ReadAt(b, off)
	if n == len(b) {
		return
	}
	if errors.Is(err, io.EOF) {
		clear(b[max(n, 0):])
		return
	}
	for p := 0; p < len(b); p += page {
		q := b[p:min(p+page, len(b))]
		if m, _ := img.ReadAt(q, off+int64(p)); m != len(q) {
			clear(q)
		}
	}
}
