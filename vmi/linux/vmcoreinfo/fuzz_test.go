package vmcoreinfo

import (
	"bytes"
	"testing"
)

// FuzzParse: whatever a guest writes, Parse returns an error or an Info
// within its bounds, never panics.
func FuzzParse(f *testing.F) {
	f.Add(fixture(f, "i386-pae"))
	f.Add(fixture(f, "x86_64-6.12"))
	f.Add([]byte("OSRELEASE=6.1\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff81000000\nSYMBOL(_stext)=1\nNUMBER(x)=0x\n"))
	f.Add([]byte("OSRELEASE=6.1\nBUILD-ID=abcd\nPAGESIZE=65536\nSYMBOL(a.b)=0\nOFFSET(a.b)=18446744073709551615\n\x00junk"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Parse(data)
		if err != nil {
			return
		}
		if in.Bytes > MaxSize || in.Bytes > len(data) || in.OSRelease == "" || in.PageSize == 0 || len(in.Symbols) == 0 {
			t.Fatalf("accepted: %d bytes, release %q, page size %d, %d symbols", in.Bytes, in.OSRelease, in.PageSize, len(in.Symbols))
		}
		if len(in.Order) > MaxLines || len(in.Skipped) > maxReported || len(in.Skipped) > in.Malformed {
			t.Fatalf("%d keys, %d quoted of %d malformed", len(in.Order), len(in.Skipped), in.Malformed)
		}
		for name := range in.Symbols {
			if !validName(name) {
				t.Fatalf("symbol name %q", name)
			}
		}
		if len(in.BuildID)%2 != 0 {
			t.Fatalf("build id %q", in.BuildID)
		}
	})
}

// FuzzScan: memory made of the fuzzer's bytes (with a planted first line)
// gives an error or VMCOREINFO that is really at the page it names.
func FuzzScan(f *testing.F) {
	f.Add(fixture(f, "i386-pae"), uint16(1))
	f.Add([]byte("PAGESIZE=4096\nSYMBOL(x)=1\n"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, page uint16) {
		m := memory{base: 0x1000, b: make([]byte, 16*scanStep)}
		at := int(page%16) * scanStep
		copy(m.b[at:], data)
		if !bytes.HasPrefix(data, []byte("OSRELEASE=")) {
			copy(m.b[at:], append([]byte("OSRELEASE=6.1\n"), data...))
		}
		found, err := Scan(m, m.ranges(), "")
		if err != nil {
			return
		}
		off := found.PA - m.base
		if found.PA%scanStep != 0 || off+uint64(len(found.Raw)) > uint64(len(m.b)) ||
			!bytes.Equal(found.Raw, m.b[off:off+uint64(len(found.Raw))]) {
			t.Fatalf("found %d bytes at %#x that are not there", len(found.Raw), found.PA)
		}
	})
}
