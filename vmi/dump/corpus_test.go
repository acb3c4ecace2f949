package dump

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the built seeds under testdata/fuzz")

// builtSeeds are the committed fuzz seeds that this package's builders
// make: inputs at the edges the parser got wrong once (issue 8) or could,
// and the real guests' memory maps as LiME files (realLiME), so that
// `go test` replays them and the fuzzers start from them. The files are in
// Go's corpus format, under testdata/fuzz/<target>/<name>; TestBuiltSeeds
// keeps them equal to the builders' output. A missing real image fails t.
func builtSeeds(t *testing.T) map[string][]any {
	const pa, n = uint64(0x1000), uint16(16)
	// The synthetic core with its PT_NOTE cut to the end of the last
	// note's descriptor: VMCOREINFO's 21-byte descriptor loses its 3 bytes
	// of padding.
	unpadded := smallELF64()
	ph := unpadded[ehdr64Size:]
	le.PutUint64(ph[32:], le.Uint64(ph[32:])-3)
	// Odd name and descriptor sizes, padded, then a last note that is not.
	odd := noteCore(bytes.Join([][]byte{
		rawNote(3, 5, 7, 'a', 'b', 0, 0, 1, 2, 3, 4, 5, 0, 0, 0),
		rawNote(5, 0, 1, 'C', 'O', 'R', 'E', 0, 0, 0, 0),
		rawNote(1, 7, 2, 'x', 0, 0, 0, 1, 2, 3, 4, 5, 6, 7),
	}, nil))
	qemu := qemuNote(0x300, 0x80050033, 0x1b2c020, 0x6f0)
	qemu.desc = append(qemu.desc, 0xee)
	elf32 := buildELF(32, em386, []elfSeg{{paddr: 0x1000, data: pattern(0x1000, 0x20, 1)}}, []elfNote{prstatus32(1, 0xc1000000, 0), qemu})
	ph32 := elf32[ehdr32Size:]
	le.PutUint32(ph32[16:], le.Uint32(ph32[16:])-3) // the QEMU note's descriptor loses its padding
	headerCut := noteCore(append(rawNote(0, 1, 1, 0xaa, 0, 0, 0), 4, 0, 0, 0, 1))
	seeds := map[string][]any{
		"FuzzOpenELF/issue8-note-13-bytes":       {craftedNoteCore(), uint64(0), n},
		"FuzzOpenELF/note-unpadded-vmcoreinfo":   {unpadded, uint64(gib4), n},
		"FuzzOpenELF/note-odd-sizes":             {odd, pa, n},
		"FuzzOpenELF/elf32-qemu-note-unpadded":   {elf32, pa, n},
		"FuzzOpenELF/note-second-header-cut":     {headerCut, pa, n},
		"FuzzOpenLiME/range-to-end-of-addresses": {buildLiME([]limeRange{{^uint64(0) - 0x10, pattern(0, 0x10, 1)}}), ^uint64(0) - 0x10, n},
		"FuzzOpenLiME/two-ranges-trailing-bytes": {append(buildLiME([]limeRange{{0, pattern(0, 0x20, 1)}, {0x1000, pattern(0x1000, 0x10, 1)}}), 1, 2, 3), uint64(0x1000), n},
		"FuzzOpenLiME/one-byte-ranges":           {buildLiME([]limeRange{{0, []byte{1}}, {1, []byte{2}}, {3, []byte{3}}}), uint64(0), uint16(3)},
	}
	for _, v := range realSeedVariants {
		l := realLiME(v)
		if l == nil {
			t.Fatalf("real image %s missing", v)
		}
		seeds["FuzzOpenLiME/real-"+v] = []any{l, uint64(0xfff0), n}
	}
	return seeds
}

// TestBuiltSeeds: every built seed is committed, byte for byte (run with
// -update-corpus after changing a builder), and opens without a panic
// through the fuzz body. The crafted core of issue 8 is among them, so
// FuzzOpenELF replays it on every `go test`.
func TestBuiltSeeds(t *testing.T) {
	for name, args := range builtSeeds(t) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "fuzz", name)
			want := marshalCorpus(args...)
			if *updateCorpus {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestBuiltSeeds -update-corpus ./vmi/dump/)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from what the builders make (run with -update-corpus)", path)
			}
			fuzzDump(t, args[0].([]byte), args[1].(uint64), args[2].(uint16))
		})
	}
}

// marshalCorpus writes values in the "go test fuzz v1" format (Go's
// internal/fuzz/encoding.go), for the types this package's targets take.
func marshalCorpus(vals ...any) []byte {
	b := bytes.NewBufferString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(b, "[]byte(%q)\n", v)
		case uint64, uint16:
			fmt.Fprintf(b, "%T(%v)\n", v, v)
		default:
			panic(fmt.Sprintf("marshalCorpus: type %T", v))
		}
	}
	return b.Bytes()
}
