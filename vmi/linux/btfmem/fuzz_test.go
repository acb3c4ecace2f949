package btfmem

import (
	"bytes"
	"testing"

	"github.com/xascript/xascript/vmi/linux/btfsrc"
)

// FuzzFind: hostile memory gives an error or a blob that is really there,
// never a panic; whatever Find accepts, btfsrc must survive too.
func FuzzFind(f *testing.F) {
	blob := synthBTF(f, 3)
	f.Add(blob)
	f.Add(append(make([]byte, 12), blob...))
	f.Add(append(append(make([]byte, 4), blob...), blob[:40]...))
	f.Add(blob[:30])
	f.Add(prefix)
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, off, err := Find(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if off%4 != 0 || off < 0 || off+int64(len(raw)) > int64(len(data)) ||
			!bytes.Equal(raw, data[off:off+int64(len(raw))]) {
			t.Fatalf("Find returned %d bytes at %#x that are not the input's", len(raw), off)
		}
		ty, err := btfsrc.Parse(raw)
		if err != nil {
			return
		}
		ty.Offsetof("module", "name")
		ty.Sizeof("list_head")
	})
}
