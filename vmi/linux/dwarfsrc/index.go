package dwarfsrc

import (
	"bytes"
	"debug/dwarf"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/xascript/xascript/internal/progress"
	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// A vmlinux has no name index for types, and every compile unit repeats the
// types it uses: finding "struct module" means looking at the top-level
// entries of every unit (3.5 million in Debian's i386 6.1 kernel). That pass
// runs once per file; its result, each name's first complete definition, is
// persisted (internal/unpack.Derived) and searched in place by later runs.
//
// Keys are a kind letter and the name: "smodule" (struct), "u" union, "e"
// enum, "t" typedef, "b" base type, since C keeps struct tags apart from
// ordinary identifiers. Layout, little-endian:
//
//	[0:8]   magic "XDWFIX01"
//	[8:16]  length of .debug_info (0 when decoded by debug/elf)
//	[16:20] number of records (n)
//	[20:24] reserved
//	[24:]   n records sorted by key: key offset and length (uint32 each,
//	        into the key bytes), unit offset, entry offset (uint64 each);
//	        then the key bytes
//
// maxNulls bounds consecutive null entries in a top-level walk.
const maxNulls = 1 << 12

const (
	indexMagic  = "XDWFIX01"
	indexHeader = 24
	recordSize  = 24
	indexTag    = "dwarfsrc-index-v1"
)

// ref locates an entry: the unit it is in and its offset in .debug_info.
type ref struct{ cu, off uint64 }

type index struct {
	once sync.Once
	err  error
	m    map[string]ref // when built in memory
	raw  []byte         // when persisted
	n    int
}

// find returns the entry named key.
func (x *index) find(key string) (ref, bool) {
	if x.m != nil {
		r, ok := x.m[key]
		return r, ok
	}
	lo, hi := 0, x.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := bytes.Compare(x.key(mid), []byte(key))
		switch {
		case c == 0:
			rec := x.raw[indexHeader+recordSize*mid:]
			return ref{binary.LittleEndian.Uint64(rec[8:]), binary.LittleEndian.Uint64(rec[16:])}, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return ref{}, false
}

// key returns record i's key, or nil when the record points outside the
// index (a corrupt cache entry then just finds nothing).
func (x *index) key(i int) []byte {
	rec := x.raw[indexHeader+recordSize*i:]
	off, n := uint64(binary.LittleEndian.Uint32(rec)), uint64(binary.LittleEndian.Uint32(rec[4:]))
	if off > uint64(len(x.raw)) || n > uint64(len(x.raw))-off {
		return nil
	}
	return x.raw[off : off+n]
}

// ensureIndex builds or maps the index on first use, so that a Load whose
// caller asks nothing costs nothing.
func (t *Types) ensureIndex() error {
	t.idx.once.Do(func() {
		if t.path == "" || t.opt.NoCache {
			t.idx.m, t.idx.err = t.scanShowing(t.opt.Progress)
			return
		}
		f, err := unpack.DerivedStep(t.path, indexTag, t.indexStep(), t.opt, t.writeIndex)
		if err != nil {
			t.idx.err = err
			return
		}
		if err := t.useIndex(f.Data); err != nil {
			// A stale or damaged entry: work from memory this time.
			f.Close()
			t.idx.m, t.idx.err = t.scanShowing(t.opt.Progress)
			return
		}
		t.idxFile = f
	})
	return t.idx.err
}

// indexStep is how the scan shows its progress: compile units, whose
// number the unit headers give before the scan starts.
func (t *Types) indexStep() progress.Step {
	name := "vmlinux"
	if t.path != "" {
		name = filepath.Base(t.path)
	}
	return progress.Step{Name: name, Doing: "indexing DWARF", Done: "indexed the DWARF of", Unit: progress.Items,
		ItemName: "compile units", Note: " (later runs use the cache)"}
}

// scanShowing is scan with its progress on m (a scan that is not cached).
func (t *Types) scanShowing(m *progress.Meter) (map[string]ref, error) {
	step := t.indexStep()
	step.Note = ""
	bar := m.Start(step)
	idx, err := t.scan(bar)
	bar.Done(err)
	return idx, err
}

func (t *Types) writeIndex(w io.Writer, bar *progress.Bar) error {
	m, err := t.scan(bar)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	hdr := make([]byte, indexHeader+recordSize*len(keys))
	copy(hdr, indexMagic)
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(t.info)))
	binary.LittleEndian.PutUint32(hdr[16:], uint32(len(keys)))
	var blob bytes.Buffer
	for i, k := range keys {
		rec := hdr[indexHeader+recordSize*i:]
		binary.LittleEndian.PutUint32(rec, uint32(len(hdr)+blob.Len()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(len(k)))
		binary.LittleEndian.PutUint64(rec[8:], m[k].cu)
		binary.LittleEndian.PutUint64(rec[16:], m[k].off)
		blob.WriteString(k)
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err = w.Write(blob.Bytes())
	return err
}

func (t *Types) useIndex(raw []byte) error {
	if len(raw) < indexHeader || string(raw[:8]) != indexMagic {
		return fmt.Errorf("DWARF index: bad header: %w", vmi.ErrFormat)
	}
	n := uint64(binary.LittleEndian.Uint32(raw[16:]))
	if binary.LittleEndian.Uint64(raw[8:]) != uint64(len(t.info)) || n > uint64(len(raw)-indexHeader)/recordSize {
		return fmt.Errorf("DWARF index does not match the file: %w", vmi.ErrFormat)
	}
	t.idx.raw, t.idx.n = raw, int(n)
	return nil
}

// scan makes the pass over every unit's top-level entries, the units
// spread over the CPUs. Each name keeps its lowest-offset definition, so the
// result does not depend on scheduling.
func (t *Types) scan(bar *progress.Bar) (m map[string]ref, err error) {
	defer firewall(&err)
	if t.info == nil {
		d, err := t.wholeData()
		if err != nil {
			return nil, err
		}
		m = map[string]ref{}
		if err := scanData(d, 0, 0, uint64(len(t.info)), m); err != nil {
			return nil, fmt.Errorf("DWARF: %w: %w", vmi.ErrFormat, err)
		}
		return m, nil
	}
	offs, err := unitOffsets(t.info, t.bo)
	if err != nil {
		return nil, err
	}
	bar.SetTotal(int64(len(offs)))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(offs)))
	maps := make([]map[string]ref, workers)
	errs := make([]error, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		maps[w] = map[string]ref{}
		wg.Go(func() {
			defer firewall(&errs[w])
			for {
				i := int(next.Add(1) - 1)
				if i >= len(offs) || errs[w] != nil {
					return
				}
				cu := offs[i]
				end := uint64(len(t.info))
				if i+1 < len(offs) {
					end = offs[i+1]
				}
				d, err := t.newData(t.info[cu:end])
				if err == nil {
					err = scanData(d, cu, cu, end-cu, maps[w])
				}
				bar.Add(1)
				if err != nil {
					errs[w] = fmt.Errorf("DWARF unit at %#x: %w: %w", cu, vmi.ErrFormat, err)
				}
			}
		})
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	m = maps[0]
	for _, o := range maps[1:] {
		for k, r := range o {
			if old, ok := m[k]; !ok || r.off < old.off {
				m[k] = r
			}
		}
	}
	return m, nil
}

// scanData records the named types among the top-level entries of the
// units in d. base is d's offset in .debug_info; cu the unit to record
// (0 when d covers the whole section), size its length when known.
//
// debug/dwarf's Reader can return null entries forever on some corrupt
// units (found by FuzzLoad), so the loop is bounded: every entry takes at
// least a byte, and a top-level walk meets one null entry per unit end,
// plus a little padding.
func scanData(d *dwarf.Data, base, cu, size uint64, m map[string]ref) error {
	r := d.Reader()
	nulls := 0
	for n := uint64(0); ; n++ {
		if (size != 0 && n > size) || nulls > maxNulls {
			return fmt.Errorf("entries do not advance (corrupt unit?): %w", vmi.ErrLimit)
		}
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil {
			return nil
		}
		if e.Tag == 0 {
			nulls++
			continue
		}
		nulls = 0
		switch e.Tag {
		case dwarf.TagCompileUnit, dwarf.TagPartialUnit, dwarf.TagTypeUnit:
			continue // step into the unit's children
		}
		if k := indexKey(e); k != "" {
			off := base + uint64(e.Offset)
			if old, ok := m[k]; !ok || off < old.off {
				m[k] = ref{cu, off}
			}
		}
		r.SkipChildren()
	}
}

// indexKey is the index key of e, or "" when e is not a named, complete
// type that lookups ask for. Declarations ("struct module;") are left out:
// a unit that only points at a struct does not know its layout.
func indexKey(e *dwarf.Entry) string {
	var kind byte
	switch e.Tag {
	case dwarf.TagStructType:
		kind = 's'
	case dwarf.TagUnionType:
		kind = 'u'
	case dwarf.TagEnumerationType:
		kind = 'e'
	case dwarf.TagTypedef:
		kind = 't'
	case dwarf.TagBaseType:
		kind = 'b'
	default:
		return ""
	}
	name, _ := e.Val(dwarf.AttrName).(string)
	if name == "" {
		return ""
	}
	if kind != 't' {
		if decl, _ := e.Val(dwarf.AttrDeclaration).(bool); decl || e.AttrField(dwarf.AttrByteSize) == nil {
			return ""
		}
	}
	return string(kind) + name
}

// keyOrder sorts lookups' candidate kinds like btfsrc: a bare "page" is the
// struct even when a typedef shares the name.
var keyOrder = []byte{'s', 'u', 't', 'b', 'e'}
