package kallsyms

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/xascript/xascript/internal/testimages"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/dump"
)

type truth struct {
	Symbols map[string]string `json:"symbols"`
	KASLR   struct {
		Text       string `json:"text"`
		KernelPhys map[string]struct {
			Start string `json:"start"`
			End   string `json:"end"`
		} `json:"kernel_phys"`
	} `json:"kaslr"`
	RAM []struct{ Start, End string } `json:"ram"`
}

func hexVal(tb testing.TB, s string) uint64 { return testimages.Hex(tb, "address", s) }

func realPath(tb testing.TB, dir, name string) string { return testimages.Path(tb, dir, name) }

func loadTruth(tb testing.TB, dir string) truth {
	var t truth
	testimages.LoadTruth(tb, dir, &t)
	return t
}

// physImage reads guest-physical memory from base on.
type physImage struct {
	t    vmi.PhysReader
	base uint64
}

func (p physImage) ReadAt(b []byte, off int64) (int, error) {
	if err := p.t.ReadPhys(b, p.base+uint64(off)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// searchRange is what the lead's caller will pass: 64 MiB either side of
// the kernel's physical start, clipped to the RAM range holding it.
func searchRange(tb testing.TB, tr truth) (lo, hi, textPA uint64) {
	code, ok := tr.KASLR.KernelPhys["Kernel code"]
	if !ok {
		tb.Fatal("truth.json: no kaslr.kernel_phys[\"Kernel code\"]")
	}
	textPA = hexVal(tb, code.Start)
	for _, r := range tr.RAM {
		s, e := hexVal(tb, r.Start), hexVal(tb, r.End)+1
		if textPA >= s && textPA < e {
			lo = max(s, textPA-min(textPA, 64<<20))
			hi = min(e, textPA+64<<20)
			return lo, hi, textPA
		}
	}
	tb.Fatalf("truth.json: Kernel code at %#x is in no RAM range", textPA)
	return
}

type symKey struct {
	name string
	addr uint64
	typ  byte
}

// guestKallsyms reads the guest's /proc/kallsyms: core-kernel lines only
// (module, BPF and ftrace-trampoline lines carry a "\t[...]" suffix and are
// not in the kernel's tables).
func guestKallsyms(tb testing.TB, dir string) map[symKey]int {
	tb.Helper()
	f, err := os.Open(realPath(tb, dir, "kallsyms.zst"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f, zstd.WithDecoderMaxWindow(1<<30))
	if err != nil {
		tb.Fatal(err)
	}
	defer zr.Close()
	m := map[symKey]int{}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.IndexByte(line, '\t') >= 0 {
			continue
		}
		fs := strings.Fields(string(line))
		if len(fs) != 3 || len(fs[1]) != 1 {
			tb.Fatalf("%s/kallsyms: bad line %q", dir, line)
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil {
			tb.Fatalf("%s/kallsyms: %q: %v", dir, line, err)
		}
		m[symKey{fs[2], a, fs[1][0]}]++
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestRealImages(t *testing.T) {
	for _, img := range testimages.All {
		// The i386 686-pae kernel lacks CONFIG_KALLSYMS_ALL: its tables
		// hold text symbols only.
		textOnly := strings.HasPrefix(img.Variant, "i386")
		t.Run(img.String(), func(t *testing.T) {
			tr := loadTruth(t, img.Variant)
			tg, err := dump.Open(realPath(t, img.Variant, img.File), dump.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			lo, hi, textPA := searchRange(t, tr)
			start := time.Now()
			res, err := Find(physImage{tg, lo}, int64(hi-lo), Options{})
			el := time.Since(start)
			if err != nil {
				t.Fatalf("Find over [%#x, %#x): %v", lo, hi, err)
			}
			t.Logf("Find over [%#x, %#x) (%d MiB, no hint): %d symbols in %v; layout %s; is64 %v",
				lo, hi, (hi-lo)>>20, len(res.Symbols), el, res.Layout, res.Is64)
			checkTables(t, tr, res, lo, textPA)
			checkSymbols(t, img.Variant, textOnly, res)
		})
	}
}

// checkTables compares the table offsets with truth.json's addresses,
// made physical through _text's physical address.
func checkTables(t *testing.T, tr truth, res *Result, lo, textPA uint64) {
	text := hexVal(t, tr.KASLR.Text)
	n := 0
	for name, off := range res.Tables {
		s, ok := tr.Symbols[name]
		if !ok {
			t.Errorf("table %s found at %#x, truth.json has no such symbol", name, off)
			continue
		}
		want := hexVal(t, s) - text + textPA - lo
		if uint64(off) != want {
			t.Errorf("table %s at image offset %#x, truth %#x", name, off, want)
		}
		n++
	}
	for name := range tr.Symbols {
		if _, ok := res.Tables[name]; strings.HasPrefix(name, "kallsyms_") && !ok {
			t.Errorf("truth.json has %s, Find did not report it", name)
		}
	}
	t.Logf("%d table offsets equal truth.json's", n)
}

func checkSymbols(t *testing.T, dir string, textOnly bool, res *Result) {
	want := guestKallsyms(t, dir)
	got := map[symKey]int{}
	types := map[byte]int{}
	for _, s := range res.Symbols {
		got[symKey{s.Name, s.Addr, s.Type}]++
		types[s.Type|0x20]++
	}
	// Without CONFIG_KALLSYMS_ALL the tables hold text symbols (t, T,
	// weak W) and the few section markers scripts/kallsyms keeps.
	if textOnly && types['t']+types['w'] < len(res.Symbols)*99/100 {
		t.Errorf("text-only kernel: decoded symbol types %v", types)
	}
	var missing, extra []string
	total := 0
	for k, n := range want {
		total += n
		if got[k] != n {
			missing = append(missing, fmt.Sprintf("%#x %c %s (guest %d, decoded %d)", k.addr, k.typ, k.name, n, got[k]))
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			extra = append(extra, fmt.Sprintf("%#x %c %s (x%d)", k.addr, k.typ, k.name, n))
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%d of the guest's %d kernel symbols differ, e.g. %q; %d decoded symbols not in the guest's kallsyms, e.g. %q",
			len(missing), total, head(missing), len(extra), head(extra))
	}
	t.Logf("all %d kernel lines of the guest's /proc/kallsyms (multiset of name, address, type) equal the %d decoded symbols",
		total, len(res.Symbols))
}

func head(s []string) []string { return s[:min(len(s), 5)] }
