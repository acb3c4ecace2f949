package tapfifo

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tapdiskRecord lays out a record the way block-logsync.c does, byte by byte, without
// the package's encoder.
func tapdiskRecord(op byte, sector uint64, count int32, data []byte) []byte {
	b := make([]byte, 5009)
	b[0] = op
	for i := 0; i < 8; i++ {
		b[1+i] = byte(sector >> (8 * i))
	}
	for i := 0; i < 4; i++ {
		b[9+i] = byte(uint32(count) >> (8 * i))
	}
	copy(b[13:13+4096], data)
	for i := 13 + 4096; i < len(b); i++ {
		b[i] = 0xa5 // the tap's uninitialized tail: never part of the record
	}
	return b
}

func TestReadTapdiskLayout(t *testing.T) {
	page := bytes.Repeat([]byte{0xee}, 4096)
	stream := append(tapdiskRecord(1, 0x0102030405, 8, page), tapdiskRecord(1, 16, 2, []byte("hello"))...)
	r := NewReader(bytes.NewReader(stream))
	var rec Record
	if err := r.Next(&rec); err != nil {
		t.Fatal(err)
	}
	if rec.Op != OpWrite || rec.Sector != 0x0102030405 || rec.Count != 8 || !bytes.Equal(rec.Payload(), page) || !rec.Complete() {
		t.Fatalf("first record: op %v sector %#x count %d", rec.Op, rec.Sector, rec.Count)
	}
	if rec.Offset() != 0x0102030405*512 || rec.Length() != 4096 {
		t.Fatalf("offset %d length %d", rec.Offset(), rec.Length())
	}
	if err := r.Next(&rec); err != nil {
		t.Fatal(err)
	}
	if rec.Sector != 16 || rec.Count != 2 || len(rec.Payload()) != 1024 || string(rec.Payload()[:5]) != "hello" {
		t.Fatalf("second record: sector %d count %d payload %d bytes", rec.Sector, rec.Count, len(rec.Payload()))
	}
	if err := r.Next(&rec); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
	if r.Offset() != 2*5009 {
		t.Fatalf("offset %d", r.Offset())
	}
}

func TestReaderErrors(t *testing.T) {
	good := tapdiskRecord(1, 8, 8, nil)
	cases := []struct {
		name string
		rec  []byte
		want string
	}{
		{"unknown op", tapdiskRecord(9, 0, 1, nil), "unknown op 9"},
		{"negative count", tapdiskRecord(1, 0, -8, nil), "negative sector count -8"},
		{"zero-length write", tapdiskRecord(1, 0, 0, nil), "write of 0 sectors"},
		{"huge write", tapdiskRecord(1, 0, DefaultMaxSectors+1, nil), "write of 65537 sectors"},
		{"zero-length discard", tapdiskRecord(5, 0, 0, nil), "discard of 0 sectors"},
		{"past 2^64", tapdiskRecord(1, math.MaxUint64/512, 1, nil), "run past 2^64"},
	}
	for _, tc := range cases {
		// The bad record sits between two good ones: its error names its offset, and
		// the reader goes on with the next record.
		stream := append(append(append([]byte{}, good...), tc.rec...), good...)
		r := NewReader(bytes.NewReader(stream))
		var rec Record
		if err := r.Next(&rec); err != nil {
			t.Fatal(err)
		}
		err := r.Next(&rec)
		var re *RecordError
		if !errors.As(err, &re) || re.Offset != 5009 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want a RecordError at byte 5009 about %q", tc.name, err, tc.want)
			continue
		}
		if err := r.Next(&rec); err != nil || rec.Sector != 8 {
			t.Errorf("%s: reader out of step after the bad record: %v", tc.name, err)
		}
	}
	// A stream cut inside its second record.
	r := NewReader(bytes.NewReader(append(append([]byte{}, good...), good[:100]...)))
	var rec Record
	if err := r.Next(&rec); err != nil {
		t.Fatal(err)
	}
	err := r.Next(&rec)
	if !errors.Is(err, ErrShortRecord) || !strings.Contains(err.Error(), "100 of 5009 bytes at byte 5009") {
		t.Fatalf("short record: %v", err)
	}
	// A tighter bound is honoured.
	r = NewReader(bytes.NewReader(tapdiskRecord(1, 0, 9, nil)))
	r.MaxSectors = 8
	if err := r.Next(&rec); err == nil {
		t.Fatal("a 9-sector write passed MaxSectors 8")
	}
}

// TestRoundTrip applies random requests to an image directly and through the record
// stream; both images must be equal, and every write record must carry a whole
// 4 KiB-aligned piece with its data.
func TestRoundTrip(t *testing.T) {
	const size = 1 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	direct := make([]byte, size)
	var stream bytes.Buffer
	w := NewWriter(&stream)
	for i := 0; i < 300; i++ {
		off := uint64(rng.IntN(size/512)) * 512
		length := uint64(rng.IntN(64)+1) * 512
		length = min(length, size-off)
		switch rng.IntN(4) {
		case 0, 1:
			data := make([]byte, length)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			copy(direct[off:], data)
			if err := w.WriteRequest(OpWrite, off, length, data); err != nil {
				t.Fatal(err)
			}
		case 2:
			clear(direct[off : off+length])
			if err := w.WriteRequest(OpWriteZeroes, off, length, nil); err != nil {
				t.Fatal(err)
			}
		case 3:
			if err := w.WriteRequest(OpFlush, 0, 0, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if stream.Len()%RecordSize != 0 {
		t.Fatalf("stream of %d bytes is not whole records", stream.Len())
	}
	replayed := make([]byte, size)
	r := NewReader(&stream)
	var rec Record
	for {
		err := r.Next(&rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Op {
		case OpWrite:
			if !rec.Complete() || rec.Offset()/4096 != (rec.Offset()+rec.Length()-1)/4096 {
				t.Fatalf("write record %d+%d is not inside one 4 KiB block", rec.Offset(), rec.Length())
			}
			copy(replayed[rec.Offset():], rec.Payload())
		case OpWriteZeroes:
			clear(replayed[rec.Offset() : rec.Offset()+rec.Length()])
		case OpFlush:
		default:
			t.Fatalf("unexpected %v", rec.Op)
		}
	}
	if !bytes.Equal(direct, replayed) {
		t.Fatal("image replayed from the records differs")
	}
}

func TestWriterRefuses(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.WriteRequest(OpWrite, 1, 512, make([]byte, 512)); !errors.Is(err, ErrUnaligned) {
		t.Errorf("unaligned offset: %v", err)
	}
	if err := w.WriteRequest(OpDiscard, 0, 100, nil); !errors.Is(err, ErrUnaligned) {
		t.Errorf("unaligned length: %v", err)
	}
	if err := w.WriteRequest(OpWrite, 0, 1024, make([]byte, 512)); err == nil {
		t.Error("length and data disagree, accepted")
	}
	if err := w.WriteRecord(&Record{Op: 77}); err == nil {
		t.Error("unknown op written")
	}
	// Discards beyond 2^31-1 sectors are split, not truncated.
	var buf bytes.Buffer
	w = NewWriter(&buf)
	if err := w.WriteRequest(OpDiscard, 0, (math.MaxInt32+10)*512, nil); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf)
	var a, b Record
	if r.Next(&a) != nil || r.Next(&b) != nil || a.Count != math.MaxInt32 || b.Count != 10 || b.Sector != math.MaxInt32 {
		t.Fatalf("split discard: %d, %d at sector %d", a.Count, b.Count, b.Sector)
	}
}

// TestFIFO streams records through a real named pipe, as XenAccess's tap did.
func TestFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tapfifo0")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			errc <- err
			return
		}
		w := NewWriter(f)
		for i := 0; i < 100; i++ {
			if err := w.WriteRequest(OpWrite, uint64(i)*4096, 4096, bytes.Repeat([]byte{byte(i)}, 4096)); err != nil {
				errc <- err
				return
			}
		}
		errc <- f.Close()
	}()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(f)
	var rec Record
	n := 0
	for ; ; n++ {
		err := r.Next(&rec)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Sector != uint64(n)*8 || rec.Count != 8 || rec.Data[4095] != byte(n) {
			t.Fatalf("record %d: sector %d count %d", n, rec.Sector, rec.Count)
		}
	}
	if n != 100 {
		t.Fatalf("%d records, want 100", n)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// FuzzReader: arbitrary streams never panic, every record is either an error or a
// valid record that encodes back to the same bytes, and reading ends.
func FuzzReader(f *testing.F) {
	f.Add(tapdiskRecord(1, 8, 8, []byte("data")))
	f.Add(append(tapdiskRecord(5, 1<<40, 1<<30, nil), tapdiskRecord(3, 0, 0, nil)...))
	f.Add(tapdiskRecord(1, 0, -1, nil)[:4000])
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		var rec Record
		for i := 0; i <= len(in)/RecordSize+1; i++ {
			start := r.Offset()
			err := r.Next(&rec)
			if err == io.EOF || errors.Is(err, ErrShortRecord) {
				return
			}
			var re *RecordError
			if errors.As(err, &re) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			enc, _ := rec.AppendBinary(nil)
			if len(enc) != RecordSize || !bytes.Equal(enc[:headerSize+DataSize], in[start:start+headerSize+DataSize]) ||
				!bytes.Equal(enc[headerSize+DataSize:], make([]byte, padSize)) {
				t.Fatalf("record at %d does not encode back to its bytes", start)
			}
			if rec.Offset()+rec.Length() < rec.Offset() {
				t.Fatalf("record at %d wraps around", start)
			}
		}
		t.Fatal("reader did not end")
	})
}
