package dump

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

// craftedNoteCore is the 4 KiB core of issue 8, byte for byte: an ELF64
// header, a PT_NOTE of 13 bytes at 0xb0 holding one note with namesz 0 and
// descsz 1 (so the descriptor's 4-byte padding would end at 16, past the
// segment), and a PT_LOAD of the file's last 0xe00 bytes at address 0.
// xascript 0.1.0 panicked on it: "slice bounds out of range [16:13]". It is
// written out with literal offsets rather than with buildELF, which pads
// every note and so cannot make this file. Its bytes are also the first
// committed seed of FuzzOpenELF (testdata/fuzz/FuzzOpenELF).
func craftedNoteCore() []byte {
	b := make([]byte, 4096)
	le := binary.LittleEndian
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], 4)  // e_type ET_CORE
	le.PutUint16(b[18:], 62) // e_machine EM_X86_64
	le.PutUint32(b[20:], 1)  // e_version
	le.PutUint64(b[32:], 64) // e_phoff
	le.PutUint16(b[52:], 64) // e_ehsize
	le.PutUint16(b[54:], 56) // e_phentsize
	le.PutUint16(b[56:], 2)  // e_phnum
	note := b[64:]
	le.PutUint32(note[0:], 4)    // PT_NOTE
	le.PutUint64(note[8:], 0xb0) // p_offset
	le.PutUint64(note[32:], 13)  // p_filesz
	load := b[64+56:]
	le.PutUint32(load[0:], 1)      // PT_LOAD
	le.PutUint64(load[8:], 0x200)  // p_offset
	le.PutUint64(load[24:], 0)     // p_paddr
	le.PutUint64(load[32:], 0xe00) // p_filesz
	le.PutUint64(load[40:], 0xe00) // p_memsz
	le.PutUint64(load[48:], 4096)  // p_align
	// The note: namesz 0, descsz 1, type 1, one descriptor byte.
	le.PutUint32(b[0xb0:], 0)
	le.PutUint32(b[0xb4:], 1)
	le.PutUint32(b[0xb8:], 1)
	b[0xbc] = 0xaa
	copy(b[0x200:], "memory at 0")
	return b
}

// TestCraftedNoteCore: the crafted core of issue 8 opens (its one note is
// complete; only the padding after it is missing) instead of panicking, and
// its memory reads back.
func TestCraftedNoteCore(t *testing.T) {
	b := craftedNoteCore()
	if len(b) != 4096 || le.Uint64(b[64+32:]) != 13 {
		t.Fatalf("crafted core: %d bytes, PT_NOTE of %d bytes; want 4096 and 13", len(b), le.Uint64(b[64+32:]))
	}
	d := mustParse(t, b)
	if got := d.MemoryMap(); len(got) != 1 || got[0] != rng(0, 0xe00) {
		t.Fatalf("memory map %v, want [0, 0xe00)", got)
	}
	buf := make([]byte, 11)
	if err := d.ReadPhys(buf, 0); err != nil || string(buf) != "memory at 0" {
		t.Fatalf("ReadPhys(0) = %q, %v", buf, err)
	}
	if d.CPU().Known || len(d.VCPUs()) != 0 {
		t.Fatalf("CPU state from a note that is no CORE or QEMU note: %+v", d.VCPUs())
	}
}

// noteCore wraps a hand-made PT_NOTE segment (bytes exactly as given, no
// padding added) in a core with one small PT_LOAD.
func noteCore(notes []byte) []byte {
	b := buildELF(64, emX86_64, []elfSeg{{paddr: 0x1000, data: pattern(0x1000, 0x40, 1)}}, []elfNote{{"X", 0, nil}})
	// buildELF put the note segment first; lay ours over it at the end of
	// the file, where nothing follows it: a read past its end is a read
	// past the file.
	ph := b[ehdr64Size:]
	off := uint64(len(b))
	le.PutUint64(ph[8:], off)
	le.PutUint64(ph[32:], uint64(len(notes)))
	return append(b, notes...)
}

// rawNote is one note header and its body bytes, with no padding.
func rawNote(namesz, descsz, typ uint32, body ...byte) []byte {
	b := le.AppendUint32(nil, namesz)
	b = le.AppendUint32(b, descsz)
	b = le.AppendUint32(b, typ)
	return append(b, body...)
}

// TestNoteAlignmentAtSegmentEnd: every way the 4-byte alignment of a name
// or a descriptor can reach past the end of the note segment either parses
// (the note itself is complete) or fails with ErrFormat naming the note;
// none panics or reads outside the segment.
func TestNoteAlignmentAtSegmentEnd(t *testing.T) {
	qemu := qemuNote(0x100, testCR0, testCR3, testCR4)
	qemu.desc = append(qemu.desc, 0xff) // 441 bytes: 3 bytes of padding would follow
	qemuUnpadded := append(rawNote(5, uint32(len(qemu.desc)), 0, []byte("QEMU\x00\x00\x00\x00")...), qemu.desc...)
	tests := []struct {
		name      string
		notes     []byte
		wantErr   string // "" = parses
		wantVCPUs int
	}{
		{"issue 8: namesz 0 descsz 1 in 13 bytes", rawNote(0, 1, 1, 0xaa), "", 0},
		{"descsz 1 then 3 stray bytes", append(rawNote(0, 1, 1, 0xaa), 0, 0, 0), "", 0},
		{"name unpadded, no descriptor", rawNote(1, 0, 1, 'A'), "", 0},
		{"name unpadded, descriptor missing", rawNote(1, 1, 1, 'A'), "overruns the 0xd-byte note segment", 0},
		{"descriptor one byte short", rawNote(0, 2, 1, 0xaa), "overruns", 0},
		{"name one byte short", rawNote(2, 0, 1, 'A'), "overruns", 0},
		{"second header cut", append(rawNote(0, 1, 1, 0xaa, 0, 0, 0), 1, 0, 0, 0, 0), "", 0},
		{"second note past the end", append(rawNote(0, 1, 1, 0xaa, 0, 0, 0), rawNote(0, 4, 1)...), "note at offset 0x10", 0},
		{"QEMU note without its trailing padding", qemuUnpadded, "", 1},
		{"huge sizes", rawNote(0xffffffff, 0xffffffff, 1), "namesz 4294967295, descsz 4294967295", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse("core.elf", noteCore(tt.notes))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got := len(d.VCPUs()); got != tt.wantVCPUs {
					t.Fatalf("%d vCPUs, want %d", got, tt.wantVCPUs)
				}
				if tt.wantVCPUs > 0 && d.CPU().CR3 != testCR3 {
					t.Fatalf("CR3 %#x, want %#x", d.CPU().CR3, uint64(testCR3))
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, vmi.ErrFormat) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q: want ErrFormat containing %q", err, tt.wantErr)
			}
		})
	}
}
