package qemu

import (
	"errors"
	"os"
	"testing"

	"github.com/xascript/xascript/vmi"
)

func TestParseRegisters(t *testing.T) {
	text, err := os.ReadFile("testdata/info-registers-q35.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRegisters(string(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Registers{CR0: 0x80050033, CR2: 0x4f03ca, CR3: 0x2a12000, CR4: 0x6b0, EFER: 0xd01}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
	// Only the first CPU counts.
	r, err = ParseRegisters("CPU#0\nCR0=1 CR3=2 CR4=3\nEFER=4\nCPU#1\nCR0=9 CR3=9 CR4=9\nEFER=9\n")
	if err != nil || r != (Registers{CR0: 1, CR3: 2, CR4: 3, EFER: 4}) {
		t.Errorf("two CPUs: %+v, %v", r, err)
	}
	if _, err := ParseRegisters("CPU#0\nCR0=1 CR3=2\n"); !errors.Is(err, vmi.ErrFormat) {
		t.Errorf("missing CR4: %v", err)
	}
}

func TestParseFlatView(t *testing.T) {
	for _, tc := range []struct {
		file string
		ram  []Region // the "ram" regions, in order
	}{
		{"info-mtree-f-q35.txt", []Region{
			{0, 0xc2fff, "ram", "mem", 0},
			{0xe8000, 0xeffff, "ram", "mem", 0xe8000},
			{0x100000, 0x7ffffff, "ram", "mem", 0x100000},
		}},
		// Above 4 GiB the block continues where the low part stopped:
		// q35 puts the PCI hole at 2 GiB, pc at 3 GiB.
		{"info-mtree-f-q35-4608M.txt", []Region{
			{0, 0xbffff, "ram", "pc.ram", 0},
			{0x100000, 0x7fffffff, "ram", "pc.ram", 0x100000},
			{0x100000000, 0x19fffffff, "ram", "pc.ram", 0x80000000},
		}},
		{"info-mtree-f-pc-4608M.txt", []Region{
			{0, 0xbffff, "ram", "pc.ram", 0},
			{0x100000, 0xbfffffff, "ram", "pc.ram", 0x100000},
			{0x100000000, 0x15fffffff, "ram", "pc.ram", 0xc0000000},
		}},
	} {
		text, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		regs, err := ParseFlatView(string(text), "memory")
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		var ram []Region
		for _, r := range regs {
			if r.Type == "ram" {
				ram = append(ram, r)
			}
		}
		if len(ram) != len(tc.ram) {
			t.Fatalf("%s: ram regions %+v, want %+v", tc.file, ram, tc.ram)
		}
		for i := range ram {
			if ram[i] != tc.ram[i] {
				t.Errorf("%s: region %d = %+v, want %+v", tc.file, i, ram[i], tc.ram[i])
			}
		}
	}
	if _, err := ParseFlatView("FlatView #0\n AS \"I/O\", root: io\n", "memory"); !errors.Is(err, vmi.ErrFormat) {
		t.Errorf("no memory AS: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"info-registers-q35.txt", "info-mtree-f-q35.txt", "info-ramblock-q35-anon.txt", "proc-maps-qemu-anon.txt"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseRegisters(s)
		ParseGPA2HVA(s)
		if blocks, err := ParseRAMBlocks(s); err == nil && len(blocks) == 0 {
			t.Fatal("ParseRAMBlocks: no blocks and no error")
		}
		if maps, err := ParseMaps(s); err == nil {
			for _, m := range maps {
				if m.End < m.Start || len(m.Perms) != 4 {
					t.Fatalf("mapping %+v", m)
				}
				m.Readable()
			}
			if len(maps) > 0 {
				checkMapped(maps, maps[0].Start, 1)
				GuessBlockHVA(maps, RAMBlock{Name: "x", Total: maps[0].End - maps[0].Start}, "")
			}
		}
		regs, err := ParseFlatView(s, "memory")
		if err == nil {
			for _, r := range regs {
				if r.End < r.Start {
					t.Fatalf("region %+v ends before it starts", r)
				}
			}
		}
	})
}
