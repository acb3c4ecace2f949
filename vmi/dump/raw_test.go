package dump

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

func TestRaw(t *testing.T) {
	d := mustParse(t, pattern(0, 0x3000, 5))
	if d.Kind() != "raw image" || d.CPU().Known || d.CPU() != (vmi.CPUState{}) {
		t.Errorf("Kind %q, CPU %+v", d.Kind(), d.CPU())
	}
	if got := d.MemoryMap(); !slices.Equal(got, []vmi.Range{rng(0, 0x3000)}) {
		t.Errorf("MemoryMap = %v", got)
	}
	if d.VCPUs() != nil {
		t.Error("raw image has vCPUs")
	}
	checkRead(t, d, 0x1ffe, 4, 5)
	checkHole(t, d, 0x2ffe, 4, 0x3000)
}

func TestNotADump(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		sentinel error
		want     string
	}{
		{"text", []byte("hello, this is not a memory dump\n"), vmi.ErrFormat, "dump notes.txt: unknown format"},
		{"4097 bytes", make([]byte, 4097), vmi.ErrFormat, "unknown format"},
		{"empty", nil, vmi.ErrFormat, "empty file"},
		{"ELF magic only", []byte("\x7fELF"), vmi.ErrFormat, "truncated"},
		{"short ELF64 header", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 40)...), vmi.ErrFormat, "shorter than the 64-byte ELF64 header"},
		{"LiME magic only", []byte("EMiL"), vmi.ErrFormat, "LiME notes.txt: truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("notes.txt", tt.data)
			if err == nil || !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.sentinel, tt.want)
			}
		})
	}
}
