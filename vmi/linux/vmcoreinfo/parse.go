package vmcoreinfo

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// Bounds on what Parse accepts from a guest.
const (
	// MaxSize bounds the text: the kernel's is one page (VMCOREINFO_BYTES
	// is PAGE_SIZE, at most 64 KiB on any architecture).
	MaxSize = 64 << 10
	// MaxLines bounds the lines (a 6.12 kernel writes about 90).
	MaxLines = 4096
	// MaxLineLen bounds one line; the kernel's are under 0x50 bytes.
	MaxLineLen = 256
	// maxReported bounds the malformed lines kept for messages.
	maxReported = 8
	maxNameLen  = 128
)

// Info is a parsed VMCOREINFO.
type Info struct {
	OSRelease string
	// BuildID is the vmlinux's GNU build id in lower-case hex, "" when the
	// kernel does not write one (before v5.9).
	BuildID  string
	PageSize uint64
	// KernelOffset is KERNELOFFSET (kaslr_offset()), when HasKernelOffset.
	KernelOffset    uint64
	HasKernelOffset bool

	Symbols map[string]uint64 // SYMBOL(name): run-time addresses
	Sizes   map[string]uint64 // SIZE(name)
	Offsets map[string]uint64 // OFFSET(struct.member), keyed "struct.member"
	Lengths map[string]uint64 // LENGTH(name)
	Numbers map[string]int64  // NUMBER(name)
	Configs map[string]bool   // CONFIG_NAME=y
	Other   map[string]string // any other KEY=VALUE (CRASHTIME, ...)

	// Order is the keys in the order the kernel wrote them.
	Order []string
	// Bytes is the length of the text parsed.
	Bytes int
	// Malformed counts the lines skipped; Skipped quotes the first few
	// with why.
	Malformed int
	Skipped   []string
}

// Symbol returns a SYMBOL() entry.
func (in *Info) Symbol(name string) (uint64, bool) {
	v, ok := in.Symbols[name]
	return v, ok
}

// Offset returns an OFFSET(struct.member) entry.
func (in *Info) Offset(structName, member string) (uint64, bool) {
	v, ok := in.Offsets[structName+"."+member]
	return v, ok
}

// Parse reads VMCOREINFO text. The text ends at the first NUL (the rest of
// the kernel's page is zeros). It must start with OSRELEASE= and hold
// PAGESIZE and at least one SYMBOL(); other lines that do not parse are
// skipped and counted.
func Parse(data []byte) (*Info, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("vmcoreinfo: %d bytes, more than %d: %w", len(data), MaxSize, vmi.ErrLimit)
	}
	if !bytes.HasPrefix(data, []byte("OSRELEASE=")) {
		return nil, fmt.Errorf("vmcoreinfo: does not start with OSRELEASE=: %w", vmi.ErrFormat)
	}
	// Sized for a 6.x kernel's text: this runs on every warm open.
	in := &Info{
		Symbols: make(map[string]uint64, 32), Sizes: make(map[string]uint64, 32), Offsets: make(map[string]uint64, 96),
		Lengths: make(map[string]uint64, 8), Numbers: make(map[string]int64, 24), Configs: map[string]bool{},
		Other: map[string]string{}, Bytes: len(data), Order: make([]string, 0, 128),
	}
	// One string for the whole text: keys and values are slices of it.
	text := string(data)
	lines := 0
	for len(text) > 0 {
		if lines++; lines > MaxLines {
			return nil, fmt.Errorf("vmcoreinfo: more than %d lines: %w", MaxLines, vmi.ErrLimit)
		}
		line, rest, ok := strings.Cut(text, "\n")
		if !ok {
			// The kernel ends every line with a newline; a last line
			// without one was cut short (the page filled up).
			in.skip(text, "unterminated")
			break
		}
		text = rest
		if len(line) > MaxLineLen {
			in.skip(line[:MaxLineLen], "too long")
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || len(key) == 0 || !printable(key) || !printable(val) {
			in.skip(line, "not KEY=VALUE")
			continue
		}
		if err := in.set(key, val); err != nil {
			in.skip(line, err.Error())
			continue
		}
		in.Order = append(in.Order, key)
	}
	switch {
	case in.OSRelease == "":
		return nil, fmt.Errorf("vmcoreinfo: empty OSRELEASE: %w", vmi.ErrFormat)
	case in.PageSize == 0:
		return nil, fmt.Errorf("vmcoreinfo: no PAGESIZE: %w", vmi.ErrFormat)
	case len(in.Symbols) == 0:
		return nil, fmt.Errorf("vmcoreinfo: no SYMBOL(): %w", vmi.ErrFormat)
	}
	return in, nil
}

func (in *Info) skip(line string, why string) {
	in.Malformed++
	if len(in.Skipped) < maxReported {
		in.Skipped = append(in.Skipped, fmt.Sprintf("%q: %s", line[:min(len(line), 80)], why))
	}
}

var errDuplicate = errors.New("duplicate key")

// set files one KEY=VALUE line; the first of duplicate keys stays.
func (in *Info) set(key, val string) error {
	if name, ok := wrapped(key, "SYMBOL("); ok {
		v, err := parseHex(val)
		if err != nil {
			return err
		}
		return setOnce(in.Symbols, name, v)
	}
	for _, m := range []struct {
		prefix string
		into   map[string]uint64
	}{{"SIZE(", in.Sizes}, {"OFFSET(", in.Offsets}, {"LENGTH(", in.Lengths}} {
		if name, ok := wrapped(key, m.prefix); ok {
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return fmt.Errorf("bad number")
			}
			return setOnce(m.into, name, v)
		}
	}
	if name, ok := wrapped(key, "NUMBER("); ok {
		v, err := parseNumber(val)
		if err != nil {
			return err
		}
		return setOnce(in.Numbers, name, v)
	}
	if name, ok := strings.CutPrefix(key, "CONFIG_"); ok && validName(name) {
		if val != "y" {
			return fmt.Errorf("CONFIG_ value is not y")
		}
		return setOnce(in.Configs, name, true)
	}
	switch {
	case key == "OSRELEASE" && in.OSRelease != "",
		key == "BUILD-ID" && in.BuildID != "",
		key == "PAGESIZE" && in.PageSize != 0,
		key == "KERNELOFFSET" && in.HasKernelOffset:
		return errDuplicate
	}
	switch key {
	case "OSRELEASE":
		if val == "" || len(val) > 64 || strings.ContainsAny(val, " \t") {
			return fmt.Errorf("bad release")
		}
		in.OSRelease = val
	case "BUILD-ID":
		if len(val) == 0 || len(val) > 128 || len(val)%2 != 0 {
			return fmt.Errorf("bad build id")
		}
		if _, err := parseHexDigits(val); err != nil {
			return err
		}
		in.BuildID = strings.ToLower(val)
	case "PAGESIZE":
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil || v < 512 || v > MaxSize || v&(v-1) != 0 {
			return fmt.Errorf("bad page size")
		}
		in.PageSize = v
	case "KERNELOFFSET":
		v, err := parseHex(val)
		if err != nil {
			return err
		}
		in.KernelOffset, in.HasKernelOffset = v, true
	default:
		if strings.ContainsAny(key, "()") {
			return fmt.Errorf("unknown KEY(name) form")
		}
		return setOnce(in.Other, key, val)
	}
	return nil
}

func setOnce[V any](m map[string]V, k string, v V) error {
	if _, ok := m[k]; ok {
		return errDuplicate
	}
	m[k] = v
	return nil
}

// wrapped returns name for key "PREFIXname)".
func wrapped(key, prefix string) (string, bool) {
	name, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, ")")
	return name, ok && validName(name)
}

// validName accepts C identifiers joined by dots (OFFSET(zone.free_area)).
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// parseHex reads the kernel's %lx (no 0x; accepted anyway).
func parseHex(s string) (uint64, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" || len(s) > 16 {
		return 0, fmt.Errorf("bad hex")
	}
	return parseHexDigits(s)
}

func parseHexDigits(s string) (uint64, error) {
	var v uint64
	for _, c := range []byte(s) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("bad hex")
		}
		v = v<<4 | uint64(d)
	}
	return v, nil
}

// parseNumber reads NUMBER(): %ld, or 0x%lx for NUMBER(VMALLOC_START);
// a hex value keeps its 64 bits.
func parseNumber(s string) (int64, error) {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		v, err := parseHex(h)
		return int64(v), err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad number")
	}
	return v, nil
}

func printable(b string) bool {
	for i := 0; i < len(b); i++ {
		if b[i] < 0x20 || b[i] > 0x7e {
			return false
		}
	}
	return true
}
