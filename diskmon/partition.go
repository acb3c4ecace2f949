package diskmon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Where an ext2/3/4 file system is found in a disk image. A guest's root
// disk is usually partitioned (MBR or GPT); a data disk often is not.
// Extended (logical) MBR partitions are not followed.

const (
	extMagicOff = 1024 + 56
	extMagic    = 0xEF53
	sectorSize  = 512
	maxGPTParts = 1024
)

// ErrNoFilesystem says the image holds no ext2/3/4 file system where looked.
var ErrNoFilesystem = errors.New("no ext2/3/4 file system")

// Partition is a byte range of a disk image.
type Partition struct {
	Index  int // 1-based partition number; 0 for the whole disk
	Off    int64
	Length int64
	Scheme string // "whole disk", "MBR", "GPT"
}

func (p Partition) String() string {
	if p.Index == 0 {
		return "whole disk"
	}
	return fmt.Sprintf("%s partition %d (bytes %d-%d)", p.Scheme, p.Index, p.Off, p.Off+p.Length)
}

// FindFilesystem locates the file system in a disk image of size bytes: with
// index 0, the whole image when it starts with one, else the first partition
// (MBR or GPT) that holds one; with index N, partition N.
func FindFilesystem(r io.ReaderAt, size int64, index int) (Partition, error) {
	if index == 0 && hasExtMagic(r, 0, size) {
		return Partition{Off: 0, Length: size, Scheme: "whole disk"}, nil
	}
	parts, err := partitions(r, size)
	if err != nil {
		return Partition{}, err
	}
	for _, p := range parts {
		if index != 0 && p.Index != index {
			continue
		}
		if hasExtMagic(r, p.Off, p.Length) {
			return p, nil
		}
		if index != 0 {
			return Partition{}, fmt.Errorf("%s: %w", p, ErrNoFilesystem)
		}
	}
	if index != 0 {
		return Partition{}, fmt.Errorf("no partition %d in the image (%d partitions)", index, len(parts))
	}
	if len(parts) == 0 {
		return Partition{}, fmt.Errorf("%w at the start of the image, and no partition table", ErrNoFilesystem)
	}
	return Partition{}, fmt.Errorf("%w in the image or its %d partitions", ErrNoFilesystem, len(parts))
}

func hasExtMagic(r io.ReaderAt, off, length int64) bool {
	if length < extMagicOff+2 {
		return false
	}
	var b [2]byte
	if _, err := r.ReadAt(b[:], off+extMagicOff); err != nil {
		return false
	}
	return binary.LittleEndian.Uint16(b[:]) == extMagic
}

// partitions reads an MBR and, behind a protective MBR, a GPT. Every range
// is checked against the image size.
func partitions(r io.ReaderAt, size int64) ([]Partition, error) {
	var mbr [sectorSize]byte
	if _, err := r.ReadAt(mbr[:], 0); err != nil {
		return nil, nil // too small for a partition table
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, nil
	}
	var parts []Partition
	for i := range 4 {
		e := mbr[446+16*i : 446+16*(i+1)]
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:])) * sectorSize
		n := int64(binary.LittleEndian.Uint32(e[12:])) * sectorSize
		if typ == 0xEE {
			return gptPartitions(r, size)
		}
		if typ == 0 || typ == 0x05 || typ == 0x0F || typ == 0x85 || n == 0 {
			continue
		}
		if start <= 0 || start >= size || n > size-start {
			return nil, fmt.Errorf("MBR partition %d (bytes %d+%d) lies outside the %d-byte image", i+1, start, n, size)
		}
		parts = append(parts, Partition{Index: i + 1, Off: start, Length: n, Scheme: "MBR"})
	}
	return parts, nil
}

func gptPartitions(r io.ReaderAt, size int64) ([]Partition, error) {
	var hdr [92]byte
	if _, err := r.ReadAt(hdr[:], sectorSize); err != nil {
		return nil, fmt.Errorf("GPT header at byte %d: %w", sectorSize, err)
	}
	if !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return nil, fmt.Errorf("protective MBR but no GPT header at byte %d", sectorSize)
	}
	entriesLBA := binary.LittleEndian.Uint64(hdr[72:])
	count := binary.LittleEndian.Uint32(hdr[80:])
	entSize := binary.LittleEndian.Uint32(hdr[84:])
	if count > maxGPTParts || entSize < 128 || entSize > 4096 || entSize%8 != 0 {
		return nil, fmt.Errorf("GPT header: %d entries of %d bytes (at most %d of 128-4096)", count, entSize, maxGPTParts)
	}
	if entriesLBA == 0 || entriesLBA > uint64(size/sectorSize) {
		return nil, fmt.Errorf("GPT entries at LBA %d outside the image", entriesLBA)
	}
	buf := make([]byte, int(count)*int(entSize))
	if _, err := r.ReadAt(buf, int64(entriesLBA)*sectorSize); err != nil {
		return nil, fmt.Errorf("GPT entries at LBA %d: %w", entriesLBA, err)
	}
	var parts []Partition
	for i := range int(count) {
		e := buf[i*int(entSize):]
		if allZero(e[:16]) {
			continue
		}
		first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if last < first || last >= uint64(size/sectorSize) {
			return nil, fmt.Errorf("GPT partition %d (LBA %d-%d) lies outside the %d-byte image", i+1, first, last, size)
		}
		parts = append(parts, Partition{Index: i + 1, Off: int64(first) * sectorSize,
			Length: int64(last-first+1) * sectorSize, Scheme: "GPT"})
	}
	return parts, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
