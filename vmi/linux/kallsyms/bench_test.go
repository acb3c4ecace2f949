package kallsyms

import (
	"testing"

	"github.com/xascript/xascript/vmi/dump"
)

// BenchmarkFindReal: Find and decode over 64 MiB either side of the kernel
// of real guests, without a hint (the worst case: the scan starts at the
// bottom of the range) and with the banner's offset as the hint, plus the
// conversion to a symbols.Table with one lookup.
func BenchmarkFindReal(b *testing.B) {
	for _, dir := range []string{"x86_64-4level", "x86_64-6.12"} {
		tr := loadTruth(b, dir)
		tg, err := dump.Open(realPath(b, dir, "mem.raw.zst"), dump.Options{})
		if err != nil {
			b.Fatal(err)
		}
		lo, hi, textPA := searchRange(b, tr)
		img := physImage{tg, lo}
		banner := int64(hexVal(b, tr.Symbols["linux_banner"]) - hexVal(b, tr.KASLR.Text) + textPA - lo)
		for _, c := range []struct {
			name string
			opt  Options
		}{{"nohint", Options{}}, {"hint", Options{Hint: banner}}} {
			b.Run(dir+"/"+c.name, func(b *testing.B) {
				for b.Loop() {
					res, err := Find(img, int64(hi-lo), c.opt)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(len(res.Symbols)), "symbols")
				}
			})
		}
		b.Run(dir+"/table", func(b *testing.B) {
			res, err := Find(img, int64(hi-lo), Options{Hint: banner})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, ok := res.Table("kallsyms").Lookup("init_task"); !ok {
					b.Fatal("no init_task")
				}
			}
		})
		tg.Close()
	}
}
