package tapfifo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

const (
	RecordSize = 5009 // bytes per record
	DataSize   = 4096 // data bytes carried per record
	SectorSize = 512
	headerSize = 1 + 8 + 4
	// padSize is the record's unused tail: XenAccess marshalled 13+4096 bytes into a
	// 5009-byte buffer and wrote all of it, so 900 bytes of stack garbage follow the
	// data. Reader ignores them; Writer writes zeroes.
	padSize = RecordSize - headerSize - DataSize
	// DefaultMaxSectors bounds the count of read and write records (32 MiB, the
	// largest NBD request; tapdisk itself never logged more than 8 sectors).
	DefaultMaxSectors = 1 << 16
	sectorsPerData    = DataSize / SectorSize
)

// Op is a record's operation: Xen's BLKIF_OP_* values, plus OpWriteZeroes.
type Op uint8

const (
	OpRead         Op = 0
	OpWrite        Op = 1
	OpWriteBarrier Op = 2
	OpFlush        Op = 3
	OpDiscard      Op = 5
	OpWriteZeroes  Op = 0x80 // xascript extension
)

func (o Op) String() string {
	switch o {
	case OpRead:
		return "read"
	case OpWrite:
		return "write"
	case OpWriteBarrier:
		return "write-barrier"
	case OpFlush:
		return "flush"
	case OpDiscard:
		return "discard"
	case OpWriteZeroes:
		return "write-zeroes"
	}
	return fmt.Sprintf("op %d", uint8(o))
}

// Record is one request.
type Record struct {
	Op     Op
	Sector uint64
	Count  uint32 // sectors
	Data   [DataSize]byte
}

// Offset is the first byte the request touches.
func (r *Record) Offset() uint64 { return r.Sector * SectorSize }

// Length is the number of bytes the request covers.
func (r *Record) Length() uint64 { return uint64(r.Count) * SectorSize }

// Payload is the part of Data that belongs to the request: for reads and writes the
// first min(Count*512, 4096) bytes; nil for other ops. A request longer than 4 KiB
// carries only its start.
func (r *Record) Payload() []byte {
	if r.Op != OpRead && r.Op != OpWrite {
		return nil
	}
	return r.Data[:min(r.Length(), DataSize)]
}

// Complete reports whether Payload holds all of the request's data.
func (r *Record) Complete() bool { return r.Length() <= DataSize }

// AppendBinary appends the record's 5009 bytes (the unused tail as zeroes).
func (r *Record) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(r.Op))
	b = binary.LittleEndian.AppendUint64(b, r.Sector)
	b = binary.LittleEndian.AppendUint32(b, r.Count)
	b = append(b, r.Data[:]...)
	return append(b, make([]byte, padSize)...), nil
}

// ErrShortRecord is wrapped by the error for a stream that ends inside a record.
var ErrShortRecord = errors.New("tapfifo: stream ends inside a record")

// RecordError is a record whose fields are invalid.
type RecordError struct {
	Offset int64 // of the record in the stream
	Reason string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("tapfifo: record at byte %d: %s", e.Offset, e.Reason)
}

// check validates a record's fields (maxSectors bounds reads and writes).
func (r *Record) check(maxSectors uint32) string {
	if int32(r.Count) < 0 {
		return fmt.Sprintf("negative sector count %d", int32(r.Count))
	}
	switch r.Op {
	case OpRead, OpWrite:
		if r.Count == 0 || r.Count > maxSectors {
			return fmt.Sprintf("%s of %d sectors (allowed 1..%d)", r.Op, r.Count, maxSectors)
		}
	case OpDiscard, OpWriteZeroes:
		if r.Count == 0 {
			return fmt.Sprintf("%s of 0 sectors", r.Op)
		}
	case OpFlush, OpWriteBarrier:
	default:
		return fmt.Sprintf("unknown op %d", uint8(r.Op))
	}
	if r.Sector > math.MaxUint64/SectorSize-uint64(r.Count) {
		return fmt.Sprintf("sectors %d+%d run past 2^64 bytes", r.Sector, r.Count)
	}
	return ""
}

// Reader reads records from a FIFO, file or any stream.
type Reader struct {
	r   io.Reader
	off int64
	buf [RecordSize]byte
	// MaxSectors bounds the count of read and write records (DefaultMaxSectors).
	MaxSectors uint32
}

// NewReader returns a Reader on r. It does not buffer: each Next reads exactly one
// record, so a FIFO's writer is never read ahead of.
func NewReader(r io.Reader) *Reader { return &Reader{r: r, MaxSectors: DefaultMaxSectors} }

// Offset is the stream offset of the next record.
func (r *Reader) Offset() int64 { return r.off }

// Next reads the next record into rec. It returns io.EOF at a clean end of the
// stream, an error wrapping ErrShortRecord when it ends inside a record, and a
// *RecordError for a record with invalid fields (Next may be called again: the
// stream is still in step).
func (r *Reader) Next(rec *Record) error {
	n, err := io.ReadFull(r.r, r.buf[:])
	start := r.off
	r.off += int64(n)
	switch {
	case err == io.EOF:
		return io.EOF
	case err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: %d of %d bytes at byte %d", ErrShortRecord, n, RecordSize, start)
	case err != nil:
		return fmt.Errorf("tapfifo: read record at byte %d: %w", start, err)
	}
	rec.Op = Op(r.buf[0])
	rec.Sector = binary.LittleEndian.Uint64(r.buf[1:])
	rec.Count = binary.LittleEndian.Uint32(r.buf[9:])
	copy(rec.Data[:], r.buf[headerSize:headerSize+DataSize])
	if msg := rec.check(r.MaxSectors); msg != "" {
		return &RecordError{Offset: start, Reason: msg}
	}
	return nil
}

// Writer writes records; it is safe for concurrent use (records never interleave),
// as NBD OnChange/OnWrite callbacks arrive from several goroutines. It does not
// buffer: every record is one Write, so a FIFO reader sees it at once.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, buf: make([]byte, 0, RecordSize)} }

// WriteRecord writes one record as it is.
func (w *Writer) WriteRecord(rec *Record) error {
	if msg := rec.check(math.MaxInt32); msg != "" {
		return fmt.Errorf("tapfifo: refusing to write a bad record: %s", msg)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(rec)
}

func (w *Writer) writeLocked(rec *Record) error {
	w.buf, _ = rec.AppendBinary(w.buf[:0])
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("tapfifo: write record: %w", err)
	}
	return nil
}

// ErrUnaligned is returned for a request that does not start and end on a sector
// boundary: records count whole sectors.
var ErrUnaligned = errors.New("tapfifo: request is not sector-aligned")

// WriteRequest writes the records of one disk request: a write (data holds its
// bytes) becomes one record per 4 KiB block of the disk it touches, each with its
// complete data; flush one record; discard and write-zeroes one record per 2^31-1
// sectors. The records of one request are written without others in between.
func (w *Writer) WriteRequest(op Op, off, length uint64, data []byte) error {
	if op == OpFlush || op == OpWriteBarrier {
		return w.WriteRecord(&Record{Op: op})
	}
	if off%SectorSize != 0 || length%SectorSize != 0 {
		return fmt.Errorf("%w: %s of %d bytes at %d", ErrUnaligned, op, length, off)
	}
	if length == 0 {
		return nil
	}
	if off > math.MaxUint64-length {
		return fmt.Errorf("tapfifo: %s of %d bytes at %d runs past 2^64", op, length, off)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var rec Record
	switch op {
	case OpWrite, OpRead:
		if uint64(len(data)) != length {
			return fmt.Errorf("tapfifo: %s of %d bytes with %d bytes of data", op, length, len(data))
		}
		for len(data) > 0 {
			// Up to the next 4 KiB boundary of the disk.
			n := min(uint64(len(data)), DataSize-off%DataSize)
			rec = Record{Op: op, Sector: off / SectorSize, Count: uint32(n / SectorSize)}
			copy(rec.Data[:], data[:n])
			if err := w.writeLocked(&rec); err != nil {
				return err
			}
			off += n
			data = data[n:]
		}
	case OpDiscard, OpWriteZeroes:
		sectors := length / SectorSize
		for sectors > 0 {
			n := min(sectors, math.MaxInt32)
			rec = Record{Op: op, Sector: off / SectorSize, Count: uint32(n)}
			if err := w.writeLocked(&rec); err != nil {
				return err
			}
			off += n * SectorSize
			sectors -= n
		}
	default:
		return fmt.Errorf("tapfifo: cannot write a request with %s", op)
	}
	return nil
}
