package isf

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/xascript/xascript/internal/unpack"
	"github.com/xascript/xascript/vmi"
)

// MaxSize bounds an ISF after decompression. A Debian kernel's ISF is tens
// of MB; a file past 512 MiB is a mistake or an attack, and decoding it
// would cost gigabytes of memory.
const MaxSize = 512 << 20

// maxSize is MaxSize, lowered by tests.
var maxSize = MaxSize

// Profile is a loaded ISF. It is safe for concurrent use.
type Profile struct {
	name     string
	format   string
	producer string

	base    map[string]baseTypeJSON
	userRaw map[string][]byte // slices of the document, decoded on first use
	enumRaw map[string][]byte
	syms    map[string]uint64
	banner  []byte
	ptrSize int

	mu    sync.Mutex
	users map[string]*userType

	graphOnce sync.Once
	graph     *graph // the types.Graph view (graph.go)

	doc *unpack.File // backs the entries when Open mapped it
	ix  *unpack.File // backs userIx and enumIx
	// userIx and enumIx replace userRaw and enumRaw for a profile from
	// Open's index.
	userIx, enumIx *sortedRaw

	// symsLazy, when set, makes syms on first use (Open's index).
	symsLazy func() map[string]uint64
	symsOnce sync.Once
}

// rawUser is the JSON of user type name.
func (p *Profile) rawUser(name string) ([]byte, bool) {
	if p.userIx != nil {
		return p.userIx.get(name)
	}
	raw, ok := p.userRaw[name]
	return raw, ok
}

// rawEnum is the JSON of enum name.
func (p *Profile) rawEnum(name string) ([]byte, bool) {
	if p.enumIx != nil {
		return p.enumIx.get(name)
	}
	raw, ok := p.enumRaw[name]
	return raw, ok
}

// symbolMap returns the symbols, decoding them from the index first when
// the profile came from Open.
func (p *Profile) symbolMap() map[string]uint64 {
	p.symsOnce.Do(func() {
		if p.symsLazy != nil {
			p.syms, p.symsLazy = p.symsLazy(), nil
		}
	})
	return p.syms
}

// Close releases the mapped document of a profile from Open; the profile
// must not be used after. Close of a Load or Parse profile does nothing.
func (p *Profile) Close() error {
	var err error
	for _, f := range []*unpack.File{p.doc, p.ix} {
		if f != nil {
			err = errors.Join(err, f.Close())
		}
	}
	p.doc, p.ix, p.userRaw, p.enumRaw, p.userIx, p.enumIx = nil, nil, nil, nil, nil, nil
	return err
}

// userType is a decoded user_types entry.
type userType struct {
	kind   string
	size   uint64
	fields map[string]fieldJSON
	err    error // why it could not be decoded, remembered
}

// Load reads the ISF at path: plain JSON, or JSON compressed with xz, gzip,
// zstd or bzip2 (recognized by magic, whatever the file is called).
func Load(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("isf: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(8)
	var r io.Reader = br
	if kind := unpack.Detect(head); kind != "" {
		d, err := unpack.NewReader(kind, br)
		if err != nil {
			return nil, fmt.Errorf("isf: %s: %s: %w: %w", path, kind, vmi.ErrFormat, err)
		}
		defer d.Close()
		r = d
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(maxSize)+1))
	if err != nil {
		return nil, fmt.Errorf("isf: read %s: %w", path, err)
	}
	if len(data) > maxSize {
		return nil, fmt.Errorf("isf: %s is larger than %d MiB uncompressed; a kernel's ISF is tens of MB: %w",
			path, MaxSize>>20, vmi.ErrLimit)
	}
	return Parse(data, path)
}

// Parse reads an ISF from data; name is used in messages.
func Parse(data []byte, name string) (*Profile, error) {
	if len(data) > maxSize {
		return nil, fmt.Errorf("isf: %s is larger than %d MiB: %w", name, MaxSize>>20, vmi.ErrLimit)
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("isf: %s is not a JSON object (an ISF starts with '{'): %w", name, vmi.ErrFormat)
	}
	p := &Profile{name: name, users: map[string]*userType{}}
	var base, meta []byte
	haveSyms := false
	// Only symbol entries have addresses: counting them sizes the map
	// once instead of growing it through 80k inserts.
	p.syms = make(map[string]uint64, bytes.Count(data, []byte(`"address"`)))
	sc := &scanner{data: data}
	err := sc.object(func(key string) error {
		var err error
		switch key {
		case "metadata":
			meta, err = sc.skip()
		case "base_types":
			base, err = sc.skip()
		case "user_types":
			p.userRaw, err = sc.rawMembers()
		case "enums":
			p.enumRaw, err = sc.rawMembers()
		case "symbols":
			haveSyms = true
			err = sc.object(func(sym string) error {
				raw, err := sc.skip()
				if err != nil {
					return err
				}
				return p.addSymbol(sym, raw)
			})
		default:
			_, err = sc.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	if err == nil && sc.peek() != 0 {
		err = sc.errorf("data after the document")
	}
	if err != nil {
		return nil, fmt.Errorf("isf: %s: %w", name, err)
	}
	if meta == nil || base == nil || p.userRaw == nil || p.enumRaw == nil || !haveSyms {
		return nil, fmt.Errorf("isf: %s lacks one of metadata, base_types, user_types, enums, symbols: %w", name, vmi.ErrFormat)
	}
	var md metadataJSON
	if err := json.Unmarshal(meta, &md); err != nil {
		return nil, fmt.Errorf("isf: %s: metadata: %w: %w", name, vmi.ErrFormat, err)
	}
	p.format, p.producer = md.Format, md.Producer.Name
	if err := json.Unmarshal(base, &p.base); err != nil || p.base == nil {
		return nil, fmt.Errorf("isf: %s: base_types: %w: %v", name, vmi.ErrFormat, err)
	}
	p.ptrSize = 8
	for _, n := range []string{"pointer", "long unsigned int"} {
		if b, ok := p.base[n]; ok {
			if sz, err := num(b.Size, "size"); err == nil && (sz == 4 || sz == 8) {
				p.ptrSize = int(sz)
				break
			}
		}
	}
	return p, nil
}

func (p *Profile) addSymbol(sym string, raw []byte) error {
	s, err := decodeSymbol(raw)
	if err != nil {
		return fmt.Errorf("symbol %q: %w: %w", sym, vmi.ErrFormat, err)
	}
	a, ok := address(s.Address)
	if !ok {
		return fmt.Errorf("symbol %q has address %q, not a 64-bit integer: %w", sym, s.Address, vmi.ErrFormat)
	}
	p.syms[sym] = a
	if sym == "linux_banner" && s.ConstantData != "" {
		if b, err := base64.StdEncoding.DecodeString(s.ConstantData); err == nil {
			p.banner = b
		}
	}
	return nil
}

// Name is the file the profile came from.
func (p *Profile) Name() string { return p.name }

// Format is the ISF format version in the metadata ("6.2.0").
func (p *Profile) Format() string { return p.format }

// Banner is linux_banner's constant_data without its trailing newline and
// NUL (the banner as xascript's locator reads it), or "" when the ISF has
// none.
func (p *Profile) Banner() string {
	return string(bytes.TrimRight(p.banner, "\x00\n"))
}

// PointerSize is the size of base type "pointer" (or else of "long
// unsigned int"), else 8.
func (p *Profile) PointerSize() int { return p.ptrSize }

// userType decodes user type name, memoized.
func (p *Profile) userType(name string) (*userType, error) {
	p.mu.Lock()
	u, ok := p.users[name]
	p.mu.Unlock()
	if ok {
		return u, u.err
	}
	raw, ok := p.rawUser(name)
	if !ok {
		return nil, fmt.Errorf("no type %q in ISF %s: %w", name, p.name, vmi.ErrNotFound)
	}
	u = &userType{}
	var j userTypeJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		u.err = fmt.Errorf("ISF %s: user type %q: %w: %w", p.name, name, vmi.ErrFormat, err)
	} else if u.size, err = num(j.Size, "size of "+name); err != nil {
		u.err = fmt.Errorf("ISF %s: %w", p.name, err)
	} else {
		u.kind, u.fields = j.Kind, j.Fields
	}
	p.mu.Lock()
	p.users[name] = u
	p.mu.Unlock()
	return u, u.err
}

// enumSize is the size of enum name.
func (p *Profile) enumSize(name string) (uint64, error) {
	raw, ok := p.rawEnum(name)
	if !ok {
		return 0, fmt.Errorf("no enum %q in ISF %s: %w", name, p.name, vmi.ErrNotFound)
	}
	var e enumJSON
	if err := json.Unmarshal(raw, &e); err != nil {
		return 0, fmt.Errorf("ISF %s: enum %q: %w: %w", p.name, name, vmi.ErrFormat, err)
	}
	sz, err := num(e.Size, "size of enum "+name)
	if err != nil {
		return 0, fmt.Errorf("ISF %s: %w", p.name, err)
	}
	return sz, nil
}
