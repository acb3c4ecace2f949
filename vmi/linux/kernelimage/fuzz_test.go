package kernelimage

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzSniffExtract feeds arbitrary files to Sniff and ExtractVmlinux: they
// must not panic, and output stays within MaxVmlinuxSize.
func FuzzSniffExtract(f *testing.F) {
	raw := fakeELF(2048)
	for _, p := range []([]byte){
		compressAll(&testing.T{}, raw)[Gzip],
		compressAll(&testing.T{}, raw)[LZ4],
		compressAll(&testing.T{}, raw)[Zstd],
		{0x02, 0x21, 0x4c, 0x18, 0xff, 0xff, 0xff, 0x7f},
		x86BCJPayload(f),
	} {
		f.Add(bzImage(p, 4))
	}
	f.Add([]byte("\x7fELF"))
	f.Add(make([]byte, SniffLen))
	maxOutput, dictCap = 4<<20, 1<<20
	f.Fuzz(func(t *testing.T, img []byte) {
		Sniff(img)
		n := &countWriter{}
		err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), n)
		if n.n > maxOutput {
			t.Fatalf("wrote %d bytes", n.n)
		}
		_ = errors.Unwrap(err)
	})
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
