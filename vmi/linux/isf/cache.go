package isf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
	"github.com/xascript/xascript/vmi/linux/symbols"
)

// An ISF is 10-35 MB of JSON (often xz-compressed), and parsing it costs
// 0.2-2 s a run: far more than the rest of a script's start. Open indexes
// it once, as an extracted BTF is, in three derived cache entries keyed by
// the ISF file's identity (internal/unpack): the decompressed JSON (for a
// compressed ISF), an index of where each type sits in it, and its symbols
// as a kallsyms-format table with that table's own hash index. A warm run
// maps the files and reads the index; the JSON is decoded only for the
// types a script asks about, as with Load.
const (
	indexTag   = "isf-index-v2"
	symbolsTag = "isf-symbols-v1"
	indexMagic = "XAISFIX1"
)

// Open loads the ISF at path through the on-disk cache (Load's formats),
// and returns its symbols as a Table named name. With opt.NoCache it is
// Load plus symbols.FromList.
func Open(path, name string, opt unpack.Options) (*Profile, *symbols.Table, error) {
	if opt.NoCache {
		p, err := Load(path)
		if err != nil {
			return nil, nil, err
		}
		return p, symbols.FromList(name, p.Symbols()), nil
	}
	if opt.MaxSize == 0 || opt.MaxSize > int64(maxSize) {
		opt.MaxSize = int64(maxSize)
	}
	doc, err := unpack.Open(path, opt)
	if err != nil {
		if errors.Is(err, unpack.ErrTooLarge) {
			return nil, nil, fmt.Errorf("isf: %s is larger than %d MiB uncompressed; a kernel's ISF is tens of MB: %w",
				path, MaxSize>>20, vmi.ErrLimit)
		}
		return nil, nil, fmt.Errorf("isf: %w", err)
	}
	// The profile parsed on a cache miss serves both derived entries.
	var parsed *Profile
	parse := func() (*Profile, error) {
		if parsed != nil {
			return parsed, nil
		}
		p, err := Parse(doc.Data, path)
		parsed = p
		return p, err
	}
	ixFile, err := unpack.Derived(path, indexTag, opt, func(w io.Writer) error {
		p, err := parse()
		if err != nil {
			return err
		}
		return writeIndex(w, p, doc.Data)
	})
	if err != nil {
		doc.Close()
		return nil, nil, err
	}
	p, err := readIndex(ixFile.Data, doc.Data, path)
	if err != nil && ixFile.CachePath() != "" {
		// A damaged (or foreign) cache entry: drop it and index again,
		// so that only this run pays.
		ixFile.Close()
		os.Remove(ixFile.CachePath())
		if ixFile, err = unpack.Derived(path, indexTag, opt, func(w io.Writer) error {
			p, err := parse()
			if err != nil {
				return err
			}
			return writeIndex(w, p, doc.Data)
		}); err != nil {
			doc.Close()
			return nil, nil, err
		}
		p, err = readIndex(ixFile.Data, doc.Data, path)
	}
	if err != nil {
		// Still unreadable: parse the document itself.
		ixFile.Close()
		if p, err = parse(); err != nil {
			doc.Close()
			return nil, nil, err
		}
	} else {
		p.ix = ixFile // the sections point into it
	}
	p.doc = doc
	symFile, err := unpack.Derived(path, symbolsTag, opt, func(w io.Writer) error {
		p, err := parse()
		if err != nil {
			return err
		}
		_, err = w.Write(symbols.Render(p.Symbols()))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var syms *symbols.Table
	if cp := symFile.CachePath(); cp != "" {
		symFile.Close()
		syms, err = symbols.LoadAs(cp, name, opt)
	} else {
		syms, err = symbols.Parse(symFile.Data, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("isf: symbols of %s: %w", path, err)
	}
	return p, syms, nil
}

// The index: magic, the document's length, the metadata strings, the
// base_types JSON, then the user_types and the enums as (name, offset,
// length) into the document, then the symbols as (name, address).
func writeIndex(w io.Writer, p *Profile, data []byte) error {
	var b bytes.Buffer
	b.WriteString(indexMagic)
	u64 := func(v uint64) { b.Write(binary.LittleEndian.AppendUint64(nil, v)) }
	str := func(s []byte) { u64(uint64(len(s))); b.Write(s) }
	u64(uint64(len(data)))
	str([]byte(p.format))
	str([]byte(p.producer))
	str(p.banner)
	u64(uint64(p.ptrSize))
	base, err := json.Marshal(p.base)
	if err != nil {
		return err
	}
	str(base)
	for _, raws := range []map[string][]byte{p.userRaw, p.enumRaw} {
		// Records of fixed size, sorted by name, then the names: a reader
		// binary-searches them in place instead of building a map.
		names := sortedKeys(raws)
		u64(uint64(len(names)))
		var blob []byte
		for _, name := range names {
			raw := raws[name]
			// Parse hands out slices of data; cap tells where each starts.
			off := cap(data) - cap(raw)
			if off < 0 || off+len(raw) > len(data) || !bytes.Equal(data[off:off+len(raw)], raw) {
				return fmt.Errorf("isf index: entry %q is not a slice of the document", name)
			}
			if len(blob) > math.MaxUint32-len(name) {
				return fmt.Errorf("isf index: names past 4 GiB")
			}
			b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(blob))))
			b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(name))))
			u64(uint64(off))
			u64(uint64(len(raw)))
			blob = append(blob, name...)
		}
		str(blob)
	}
	u64(uint64(len(p.syms)))
	for _, name := range sortedKeys(p.syms) {
		str([]byte(name))
		u64(p.syms[name])
	}
	_, err = w.Write(b.Bytes())
	return err
}

// readIndex rebuilds a Profile from an index over data. The index is a
// cache file of ours, but it is read like any input: every length and
// offset is checked.
func readIndex(ix, data []byte, name string) (*Profile, error) {
	bad := func(what string) error { return fmt.Errorf("isf index of %s: %s: %w", name, what, vmi.ErrFormat) }
	if !bytes.HasPrefix(ix, []byte(indexMagic)) {
		return nil, bad("no magic")
	}
	r := ix[len(indexMagic):]
	u64 := func() (uint64, bool) {
		if len(r) < 8 {
			return 0, false
		}
		v := binary.LittleEndian.Uint64(r)
		r = r[8:]
		return v, true
	}
	str := func() ([]byte, bool) {
		n, ok := u64()
		if !ok || n > uint64(len(r)) {
			return nil, false
		}
		s := r[:n]
		r = r[n:]
		return s, true
	}
	if n, ok := u64(); !ok || n != uint64(len(data)) {
		return nil, bad("made for a document of another length")
	}
	format, ok1 := str()
	producer, ok2 := str()
	banner, ok3 := str()
	ptr, ok4 := u64()
	base, ok5 := str()
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || (ptr != 4 && ptr != 8) {
		return nil, bad("truncated metadata")
	}
	p := &Profile{name: name, format: string(format), producer: string(producer),
		banner: bytes.Clone(banner), ptrSize: int(ptr), users: map[string]*userType{}}
	if err := json.Unmarshal(base, &p.base); err != nil {
		return nil, bad("base types")
	}
	for _, dst := range []**sortedRaw{&p.userIx, &p.enumIx} {
		n, ok := u64()
		if !ok || n > uint64(len(r))/rawRecordLen {
			return nil, bad("entry count")
		}
		recs := r[:n*rawRecordLen]
		r = r[n*rawRecordLen:]
		names, ok := str()
		if !ok {
			return nil, bad("truncated names")
		}
		t := &sortedRaw{recs: recs, names: names, data: data, n: int(n)}
		if err := t.check(); err != nil {
			return nil, bad(err.Error())
		}
		*dst = t
	}
	// The symbols are decoded only if the profile is asked for them (a
	// kernel opened through Open reads them from the symbols table): a map
	// of 90-150k names costs more than all the rest.
	syms := r
	if _, err := decodeIndexSymbols(syms, true); err != nil {
		return nil, bad(err.Error())
	}
	p.symsLazy = func() map[string]uint64 {
		m, _ := decodeIndexSymbols(syms, false)
		return m
	}
	return p, nil
}

// decodeIndexSymbols reads the index's symbol section; checkOnly walks it
// without building the map.
func decodeIndexSymbols(r []byte, checkOnly bool) (map[string]uint64, error) {
	if len(r) < 8 {
		return nil, errors.New("no symbol count")
	}
	n := binary.LittleEndian.Uint64(r)
	r = r[8:]
	if n > uint64(len(r)) {
		return nil, errors.New("symbol count past the end")
	}
	var m map[string]uint64
	if !checkOnly {
		m = make(map[string]uint64, n)
	}
	for range n {
		if len(r) < 8 {
			return nil, errors.New("truncated symbols")
		}
		l := binary.LittleEndian.Uint64(r)
		if l > uint64(len(r)-8) || uint64(len(r)-8)-l < 8 {
			return nil, errors.New("truncated symbols")
		}
		name := r[8 : 8+l]
		a := binary.LittleEndian.Uint64(r[8+l:])
		r = r[16+l:]
		if m != nil {
			m[string(name)] = a
		}
	}
	if len(r) != 0 {
		return nil, errors.New("data after the symbols")
	}
	return m, nil
}

// sortedRaw is an index section: records of (name offset, name length,
// entry offset, entry length), sorted by name, over the names and the
// document.
type sortedRaw struct {
	recs, names, data []byte
	n                 int
}

const rawRecordLen = 24

func (t *sortedRaw) name(i int) []byte {
	r := t.recs[i*rawRecordLen:]
	off, l := binary.LittleEndian.Uint32(r), binary.LittleEndian.Uint32(r[4:])
	return t.names[off : off+l]
}

func (t *sortedRaw) entry(i int) []byte {
	r := t.recs[i*rawRecordLen:]
	off, l := binary.LittleEndian.Uint64(r[8:]), binary.LittleEndian.Uint64(r[16:])
	return t.data[off : off+l : off+l]
}

// check bounds every record and the order once, so that get cannot go out
// of range or miss.
func (t *sortedRaw) check() error {
	var prev []byte
	for i := range t.n {
		r := t.recs[i*rawRecordLen:]
		off, l := uint64(binary.LittleEndian.Uint32(r)), uint64(binary.LittleEndian.Uint32(r[4:]))
		if off+l > uint64(len(t.names)) {
			return errors.New("name out of range")
		}
		eo, el := binary.LittleEndian.Uint64(r[8:]), binary.LittleEndian.Uint64(r[16:])
		if eo > uint64(len(t.data)) || el > uint64(len(t.data))-eo {
			return errors.New("entry out of the document")
		}
		name := t.names[off : off+l]
		if i > 0 && bytes.Compare(prev, name) >= 0 {
			return errors.New("names out of order")
		}
		prev = name
	}
	return nil
}

func (t *sortedRaw) get(name string) ([]byte, bool) {
	i := sort.Search(t.n, func(i int) bool { return string(t.name(i)) >= name })
	if i < t.n && string(t.name(i)) == name {
		return t.entry(i), true
	}
	return nil, false
}
