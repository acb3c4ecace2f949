package dump

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

func limeSample() []byte {
	return buildLiME([]limeRange{
		{0, pattern(0, 0x9f000, 7)},
		{0x100000, pattern(0x100000, 0x3000, 7)},
		{0x103000, pattern(0x103000, 0x1000, 7)}, // adjacent to the previous one
		{gib4, pattern(gib4, 0x2000, 7)},
	})
}

func TestLiME(t *testing.T) {
	d := mustParse(t, limeSample())
	if d.Kind() != "LiME" || d.CPU().Known {
		t.Errorf("Kind %q, CPU %+v", d.Kind(), d.CPU())
	}
	want := []vmi.Range{rng(0, 0x9f000), rng(0x100000, 0x104000), rng(gib4, gib4+0x2000)}
	if got := d.MemoryMap(); !slices.Equal(got, want) {
		t.Errorf("MemoryMap = %v, want %v", got, want)
	}
	checkRead(t, d, 0x9eff8, 8, 7)
	checkRead(t, d, 0x102ff0, 0x20, 7) // across the adjacent ranges
	checkRead(t, d, gib4, 0x2000, 7)
	checkHole(t, d, 0x9eff8, 16, 0x9f000)
	checkHole(t, d, 0xa0000, 4, 0xa0000)
	checkHole(t, d, gib4+0x1ff8, 16, gib4+0x2000)
}

func TestLiMEErrors(t *testing.T) {
	le := binary.LittleEndian
	second := 32 + 0x9f000 // offset of range 1's header
	tests := []struct {
		name     string
		mutate   func(b []byte) []byte
		sentinel error
		want     string
	}{
		{"bad magic in range 1", func(b []byte) []byte { le.PutUint32(b[second:], 0x12345678); return b }, vmi.ErrFormat, "range 1 header at offset 0x9f020: bad magic 0x12345678"},
		{"version 2", func(b []byte) []byte { le.PutUint32(b[4:], 2); return b }, vmi.ErrUnsupported, "version 2"},
		{"end before start", func(b []byte) []byte { le.PutUint64(b[second+16:], 0xfffff); return b }, vmi.ErrFormat, "bad range start 0x100000 end 0xfffff"},
		{"end max", func(b []byte) []byte { le.PutUint64(b[16:], ^uint64(0)); return b }, vmi.ErrFormat, "bad range"},
		{"range beyond file", func(b []byte) []byte { le.PutUint64(b[16:], 1<<40); return b }, vmi.ErrFormat, "truncated: range 0"},
		{"range of 2^64-1 bytes", func(b []byte) []byte { le.PutUint64(b[8:], 0); le.PutUint64(b[16:], ^uint64(0)-1); return b }, vmi.ErrFormat, "needs 0xffffffffffffffff bytes"},
		{"range 1 to the end of the address space", func(b []byte) []byte { le.PutUint64(b[second+16:], ^uint64(0)-1); return b }, vmi.ErrFormat, "truncated: range 1"},
		{"trailing bytes", func(b []byte) []byte { return append(b, 1, 2, 3) }, vmi.ErrFormat, "needs 32 bytes, 3 left"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("mem.lime", tt.mutate(limeSample()))
			if err == nil || !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "LiME mem.lime: ") {
				t.Fatalf("error %v, want %v containing %q", err, tt.sentinel, tt.want)
			}
		})
	}
}

func TestLiMETruncated(t *testing.T) {
	data := buildLiME([]limeRange{{0, pattern(0, 0x100, 1)}, {0x1000, pattern(0x1000, 0x40, 1)}, {0x2000, pattern(0x2000, 8, 1)}})
	// LiME has no range count or end marker: a file cut exactly between two
	// ranges is a valid, shorter capture.
	boundaries := map[int]int{32 + 0x100: 1, 2*32 + 0x140: 2}
	for cut := 4; cut < len(data); cut++ {
		d, err := Parse("cut.lime", data[:cut])
		if n, ok := boundaries[cut]; ok {
			if err != nil || len(d.MemoryMap()) != n {
				t.Fatalf("cut at range boundary %#x: %v", cut, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("cut at %#x: %v", cut, err)
		}
	}
}

func TestLiMETooManyRanges(t *testing.T) {
	var rs []limeRange
	for i := 0; i <= maxLiMERanges; i++ {
		rs = append(rs, limeRange{uint64(i) * 2, []byte{1}})
	}
	_, err := Parse("many.lime", buildLiME(rs))
	if !errors.Is(err, vmi.ErrLimit) {
		t.Fatalf("err = %v, want ErrLimit", err)
	}
}
