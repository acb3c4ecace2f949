package kallsyms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/xascript/xascript/vmi"
)

// Options tune Find. The zero value is ready to use.
type Options struct {
	// Hint is an offset in the image near which the tables are expected
	// (the kernel banner, say): the search runs from there to the end, then
	// from the start up to it. Tables sit in .rodata, a few MiB after the
	// banner, so a good hint turns a scan of the whole range into one of a
	// few MiB.
	Hint int64
	// MaxSymbols bounds kallsyms_num_syms (default 1<<22; a Debian kernel
	// has ~90k-160k).
	MaxSymbols int
	// ImageVA is the virtual address of image offset 0. Only place-relative
	// tables (v7.0+) need it: they hold no absolute address. When it is 0
	// their symbols' addresses are image offsets (Result.PlaceRelative).
	ImageVA uint64
	// Context, when set, cancels the search.
	Context context.Context
}

// Symbol is one decoded kallsyms entry.
type Symbol struct {
	Addr uint64 // run-time address (absolute; per-cpu symbols are offsets into the per-cpu area, as /proc/kallsyms shows them)
	Type byte   // nm type letter
	Name string
}

// Result is a decoded symbol table and where it was found.
type Result struct {
	// Symbols in table order, which is address order.
	Symbols []Symbol
	// Layout names the table order and the address encoding found,
	// e.g. "v6.4+ order, base-relative with absolute per-cpu".
	Layout string
	// Tables maps each table's kernel name (kallsyms_names, ...) to its
	// offset in the image.
	Tables map[string]int64
	// Is64 reports pointer-sized fields of 8 bytes. Place-relative tables
	// have no pointer-sized field, so it is false for them.
	Is64 bool
	// PlaceRelative: the addresses are ImageVA-relative (v7.0+ tables).
	PlaceRelative bool
}

// Bounds against hostile memory and facts from scripts/kallsyms.c.
const (
	ksymNameLen       = 512      // KSYM_NAME_LEN since v6.1 (128 before): longest expanded name incl. type
	defaultMaxSymbols = 1 << 22  // also the 24-bit limit of kallsyms_seqs_of_names
	maxNamesBytes     = 64 << 20 // compressed or expanded; a big kernel (allyesconfig, ~400k symbols) has ~8 MiB
	maxCandidates     = 64       // token-table candidates tried before giving up
	maxMarkerCands    = 32       // kallsyms_markers candidates tried per token table
	digitRun          = "0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00"
	scanChunk         = 1 << 20
	// A block of 256 names takes at least 2 bytes per name (length, type
	// token) and at most 2 length bytes plus one token per expanded byte.
	minMarkerGap = 256 * 2
	maxMarkerGap = 256 * (2 + ksymNameLen)
)

// Find searches kernel image memory for the kallsyms tables and decodes
// them. img reads the image: offset 0 is where the search starts (for
// guest-physical memory, the start of a range around the kernel), size
// its length. Read errors (holes) in the scanned range are skipped.
func Find(img io.ReaderAt, size int64, opt Options) (*Result, error) {
	if opt.MaxSymbols <= 0 || opt.MaxSymbols > defaultMaxSymbols {
		opt.MaxSymbols = defaultMaxSymbols
	}
	if opt.Context == nil {
		opt.Context = context.Background()
	}
	if size < 0 {
		return nil, fmt.Errorf("kallsyms: negative image size %d", size)
	}
	f := &finder{img: img, size: size, opt: opt, work: maxWork}
	var res *Result
	var errs []error
	tried := 0
	err := f.scan(func(pos int64) bool {
		tried++
		r, err := f.tryAt(pos)
		if err == nil {
			res = r
			return false
		}
		if errors.Is(err, vmi.ErrLimit) && f.work < 0 {
			errs = append(errs[:0], err)
			return false
		}
		if len(errs) < vmi.MaxDetails {
			errs = append(errs, err)
		}
		return tried < maxCandidates
	})
	if res != nil {
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kallsyms: %w", err)
	}
	if tried == 0 {
		return nil, errf(vmi.ErrNotFound, "kallsyms: kallsyms_token_table not found: no run of the single-digit tokens \"0\" to \"9\" in %#x bytes",
			size)
	}
	if f.work < 0 && len(errs) == 1 {
		return nil, fmt.Errorf("kallsyms: %w", errs[0])
	}
	more := ""
	if tried >= maxCandidates {
		more = fmt.Sprintf(" (stopped after %d)", maxCandidates)
	}
	// Each candidate's rejection is a detail: on one line they ran to
	// kilobytes.
	return nil, vmi.Detailed(vmi.ExplainAll(nil, errs, tried), vmi.ErrNotFound,
		"kallsyms: %d kallsyms_token_table candidates%s, none led to a consistent table set", tried, more)
}

type finder struct {
	img  io.ReaderAt
	size int64
	opt  Options
	work int64 // steps left before Find gives up (see spend)
}

// maxWork bounds the steps (words examined, names walked) one Find may take:
// hostile memory can offer many candidates that each look plausible for a
// while. A real kernel needs a few million.
const maxWork = 1 << 27

// spend takes n steps from the budget and fails once it is exhausted.
func (f *finder) spend(n int) error {
	f.work -= int64(n)
	if f.work < 0 {
		return errf(vmi.ErrLimit, "gave up after %d steps: memory holds too many near-misses of kallsyms tables", maxWork)
	}
	return nil
}

// read returns n bytes at off, or an error naming the range and what it was
// for.
func (f *finder) read(off, n int64, what string) ([]byte, error) {
	if off < 0 || n < 0 || off > f.size || n > f.size-off {
		return nil, errf(vmi.ErrFormat, "%s at %#x+%#x: outside the image (%#x bytes)", what, off, n, f.size)
	}
	b := make([]byte, n)
	// io.ReaderAt may report EOF with a full read that ends at the end.
	if got, err := f.img.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		return nil, fmt.Errorf("%s at %#x+%#x: %w", what, off, n, err)
	}
	return b, nil
}

// scan calls try with the offset of every "0\x00...9\x00" run, starting at
// the hint and wrapping, until try returns false. A chunk that cannot be
// read is retried page by page so that a hole hides only itself.
func (f *finder) scan(try func(pos int64) bool) error {
	hint := f.opt.Hint
	if hint < 0 || hint >= f.size {
		hint = 0
	}
	buf := make([]byte, scanChunk+len(digitRun)-1)
	ranges := [][2]int64{{hint, f.size}, {0, min(f.size, hint+int64(len(digitRun))-1)}}
	for _, r := range ranges {
		for off := r[0]; off < r[1]; off += scanChunk {
			if err := f.opt.Context.Err(); err != nil {
				return err
			}
			if f.work < 0 {
				return nil
			}
			n := min(int64(len(buf)), r[1]-off)
			b := buf[:n]
			if !f.readScan(b, off) {
				continue
			}
			for i := 0; ; {
				j := bytes.Index(b[i:], []byte(digitRun))
				if j < 0 {
					break
				}
				if !try(off + int64(i+j)) {
					return nil
				}
				i += j + 1
			}
		}
	}
	return nil
}

// readScan fills b from off, zeroing the pages that cannot be read. It
// reports false when nothing could be read.
func (f *finder) readScan(b []byte, off int64) bool {
	if got, err := f.img.ReadAt(b, off); err == nil || errors.Is(err, io.EOF) && got == len(b) {
		return true
	}
	ok := false
	const page = 4096
	for i := 0; i < len(b); {
		// Page-align the pieces so a hole costs one failed read per page.
		end := min(len(b), i+page-int((off+int64(i))%page))
		if got, err := f.img.ReadAt(b[i:end], off+int64(i)); err == nil || errors.Is(err, io.EOF) && got == end-i {
			ok = true
		} else {
			clear(b[i:end])
		}
		i = end
	}
	return ok
}

// tryAt checks the token table around the digit run at pos and, if it is
// one, finds and decodes the rest.
func (f *finder) tryAt(pos int64) (*Result, error) {
	tt, err := f.tokenTable(pos)
	if err != nil {
		return nil, err
	}
	return f.fromTokenTable(tt)
}

// sentinelError carries a vmi sentinel for errors.Is without repeating its
// text at every level of context.
type sentinelError struct {
	err, sentinel error
}

func (e *sentinelError) Error() string   { return e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.err, e.sentinel} }

func errf(sentinel error, format string, args ...any) error {
	return &sentinelError{fmt.Errorf(format, args...), sentinel}
}
