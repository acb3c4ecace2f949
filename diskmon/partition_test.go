package diskmon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// disk builds an image of n sectors with an ext magic at each of fsAt.
func disk(n int, fsAt ...int64) []byte {
	b := make([]byte, n*sectorSize)
	for _, off := range fsAt {
		binary.LittleEndian.PutUint16(b[off+extMagicOff:], extMagic)
	}
	return b
}

func mbrEntry(b []byte, i int, typ byte, startLBA, sectors uint32) {
	e := b[446+16*i:]
	e[4] = typ
	binary.LittleEndian.PutUint32(e[8:], startLBA)
	binary.LittleEndian.PutUint32(e[12:], sectors)
	b[510], b[511] = 0x55, 0xAA
}

func TestFindFilesystem(t *testing.T) {
	whole := disk(64, 0)
	if p, err := FindFilesystem(bytes.NewReader(whole), int64(len(whole)), 0); err != nil || p.Index != 0 || p.Off != 0 {
		t.Fatalf("whole disk: %v %v", p, err)
	}

	mbr := disk(4096, 2048*sectorSize)
	mbrEntry(mbr, 0, 0x82, 63, 100) // swap first, no file system
	mbrEntry(mbr, 1, 0x83, 2048, 2048)
	p, err := FindFilesystem(bytes.NewReader(mbr), int64(len(mbr)), 0)
	if err != nil || p.Index != 2 || p.Off != 2048*sectorSize || p.Length != 2048*sectorSize || p.Scheme != "MBR" {
		t.Fatalf("MBR: %v %v", p, err)
	}
	if _, err := FindFilesystem(bytes.NewReader(mbr), int64(len(mbr)), 1); !errors.Is(err, ErrNoFilesystem) {
		t.Fatalf("partition 1 is swap: %v", err)
	}
	if _, err := FindFilesystem(bytes.NewReader(mbr), int64(len(mbr)), 3); err == nil || !strings.Contains(err.Error(), "no partition 3") {
		t.Fatalf("partition 3: %v", err)
	}
	bad := append([]byte(nil), mbr...)
	mbrEntry(bad, 2, 0x83, 4000, 0xFFFFFFF0) // runs past the end
	if _, err := FindFilesystem(bytes.NewReader(bad), int64(len(bad)), 0); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("hostile MBR: %v", err)
	}

	gpt := disk(8192, 4096*sectorSize)
	mbrEntry(gpt, 0, 0xEE, 1, 8191)
	copy(gpt[sectorSize:], "EFI PART")
	binary.LittleEndian.PutUint64(gpt[sectorSize+72:], 2)
	binary.LittleEndian.PutUint32(gpt[sectorSize+80:], 128)
	binary.LittleEndian.PutUint32(gpt[sectorSize+84:], 128)
	ent := gpt[2*sectorSize+128:] // entry 2
	ent[0] = 1
	binary.LittleEndian.PutUint64(ent[32:], 4096)
	binary.LittleEndian.PutUint64(ent[40:], 8191)
	p, err = FindFilesystem(bytes.NewReader(gpt), int64(len(gpt)), 0)
	if err != nil || p.Index != 2 || p.Off != 4096*sectorSize || p.Scheme != "GPT" {
		t.Fatalf("GPT: %v %v", p, err)
	}
	binary.LittleEndian.PutUint32(gpt[sectorSize+80:], 1<<30) // lying count
	if _, err := FindFilesystem(bytes.NewReader(gpt), int64(len(gpt)), 0); err == nil || !strings.Contains(err.Error(), "entries") {
		t.Fatalf("hostile GPT: %v", err)
	}

	empty := disk(64)
	if _, err := FindFilesystem(bytes.NewReader(empty), int64(len(empty)), 0); !errors.Is(err, ErrNoFilesystem) {
		t.Fatalf("empty: %v", err)
	}
}

func FuzzFindFilesystem(f *testing.F) {
	f.Add(disk(8, 0))
	m := disk(16)
	mbrEntry(m, 0, 0x83, 4, 8)
	f.Add(m)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := FindFilesystem(bytes.NewReader(b), int64(len(b)), 0)
		if err == nil && (p.Off < 0 || p.Off+p.Length > int64(len(b))) {
			t.Fatalf("range %v outside %d bytes", p, len(b))
		}
	})
}
