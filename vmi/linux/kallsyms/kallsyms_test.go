package kallsyms

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/xascript/xascript/vmi"
)

func TestSyntheticLayouts(t *testing.T) {
	for _, n := range []int{300, 1000} {
		for _, s := range variants(n) {
			t.Run(s.String(), func(t *testing.T) {
				img, want, tables := s.build()
				res, err := Find(bytes.NewReader(img), int64(len(img)), Options{ImageVA: s.imageVA})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Symbols) != len(want) {
					t.Fatalf("%d symbols, want %d", len(res.Symbols), len(want))
				}
				for i, g := range res.Symbols {
					if g != want[i] {
						t.Fatalf("symbol %d = %+v, want %+v", i, g, want[i])
					}
				}
				for name, off := range tables {
					if res.Tables[name] != off {
						t.Errorf("%s at %#x, want %#x", name, res.Tables[name], off)
					}
				}
				if len(res.Tables) != len(tables) {
					t.Errorf("tables %v, want %v", res.Tables, tables)
				}
				if want64 := s.ptr == 8 && s.enc != "place"; res.Is64 != want64 {
					t.Errorf("Is64 = %v", res.Is64)
				}
				if res.PlaceRelative != (s.enc == "place") {
					t.Errorf("PlaceRelative = %v", res.PlaceRelative)
				}
				t.Log(res.Layout)
			})
		}
	}
}

// TestHint: the search starts at the hint and wraps around.
func TestHint(t *testing.T) {
	s := synth{order: "new", enc: "percpu", ptr: 8, markerW: 4, n: 600, pre: 1 << 16}
	img, want, _ := s.build()
	for _, hint := range []int64{0, 1 << 15, int64(len(img)) - 100, int64(len(img)) + 5, -3} {
		res, err := Find(bytes.NewReader(img), int64(len(img)), Options{Hint: hint})
		if err != nil || len(res.Symbols) != len(want) {
			t.Fatalf("hint %#x: %v", hint, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	img := make([]byte, 1<<20)
	_, err := Find(bytes.NewReader(img), int64(len(img)), Options{})
	if !errors.Is(err, vmi.ErrNotFound) || !strings.Contains(err.Error(), "kallsyms_token_table not found") {
		t.Fatalf("err = %v", err)
	}
}

// TestDamaged: every table damaged in turn gives an error that names what
// was not found, never a wrong table.
func TestDamaged(t *testing.T) {
	const maxMessage = 160 // the CLI prefixes the target and hints
	s := synth{order: "oldseqs", enc: "percpu", ptr: 8, markerW: 4, n: 1000, pre: 64}
	img, _, tables := s.build()
	for name, off := range tables {
		t.Run(name, func(t *testing.T) {
			bad := bytes.Clone(img)
			for i := int64(0); i < 24; i++ {
				bad[off+i] ^= 0x5a
			}
			res, err := Find(bytes.NewReader(bad), int64(len(bad)), Options{})
			if err == nil {
				// Damage to a table Find does not rely on for every
				// symbol (a name's tokens) may still decode: it must
				// then not be silently wrong about the layout.
				if res.Tables[name] != off {
					t.Fatalf("found %s at %#x, not %#x", name, res.Tables[name], off)
				}
				return
			}
			if !errors.Is(err, vmi.ErrNotFound) && !errors.Is(err, vmi.ErrFormat) && !errors.Is(err, vmi.ErrLimit) {
				t.Fatalf("err %v wraps no sentinel", err)
			}
			// One short line; the rejected candidates are its details.
			if msg := err.Error(); len(msg) > maxMessage || strings.Contains(msg, "\n") {
				t.Errorf("message of %d bytes: %q", len(msg), msg)
			}
			if strings.Contains(err.Error(), "candidates, none") && len(vmi.Details(err)) == 0 {
				t.Errorf("%v: no details", err)
			}
			t.Log(err)
			for _, d := range vmi.Details(err) {
				t.Log("  " + d)
			}
		})
	}
	// Truncated anywhere: no panic, an error.
	end := int64(0)
	for _, off := range tables {
		end = max(end, off)
	}
	for cut := 0; cut < int(end); cut += int(end) / 97 {
		if _, err := Find(bytes.NewReader(img[:cut]), int64(cut), Options{}); err == nil {
			t.Fatalf("truncated at %#x: no error", cut)
		}
	}
}

func TestMaxSymbols(t *testing.T) {
	s := synth{order: "new", enc: "rel", ptr: 8, markerW: 4, n: 1000, pre: 64}
	img, _, _ := s.build()
	if _, err := Find(bytes.NewReader(img), int64(len(img)), Options{MaxSymbols: 999}); err == nil {
		t.Fatal("1000 symbols accepted with MaxSymbols 999")
	}
}

func TestTable(t *testing.T) {
	s := synth{order: "new", enc: "percpu", ptr: 8, markerW: 4, n: 1000, pre: 64}
	img, want, _ := s.build()
	res, err := Find(bytes.NewReader(img), int64(len(img)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab := res.Table("synthetic")
	if tab.Len() != len(want) {
		t.Fatalf("Len = %d", tab.Len())
	}
	for _, s := range want {
		if a, ok := tab.Lookup(s.Name); !ok || a != s.Addr {
			t.Fatalf("Lookup(%s) = %#x, %v; want %#x", s.Name, a, ok, s.Addr)
		}
	}
}
