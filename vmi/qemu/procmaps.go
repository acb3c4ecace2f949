package qemu

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// errNoGPA2HVA: the monitor has no gpa2hva command (QEMU before 2.9), so
// host addresses must be guessed from /proc/PID/maps.
var errNoGPA2HVA = fmt.Errorf("HMP has no gpa2hva command: %w", vmi.ErrUnsupported)

// "Host virtual address for 0x100000 (pc.ram) is 0x7f9137f00000"
var gpa2hvaLine = regexp.MustCompile(`^Host virtual address for (0x[0-9a-fA-F]+) \((.*)\) is (0x[0-9a-fA-F]+)$`)

// ParseGPA2HVA reads the answer of HMP `gpa2hva ADDR`: the host virtual
// address in QEMU's process that holds guest-physical ADDR, and the name of
// the memory region there. An address outside RAM ("No memory is mapped at
// address ...", "... is not RAM") fails with vmi.ErrNotPresent.
func ParseGPA2HVA(text string) (hva uint64, region string, err error) {
	line := strings.TrimSpace(text)
	if m := gpa2hvaLine.FindStringSubmatch(line); m != nil {
		hva, err := strconv.ParseUint(m[3][2:], 16, 64)
		if err != nil {
			return 0, "", fmt.Errorf("gpa2hva: %q: %w", line, vmi.ErrFormat)
		}
		return hva, m[2], nil
	}
	switch {
	case strings.HasPrefix(line, "No memory is mapped"), strings.HasSuffix(line, "is not RAM"):
		return 0, "", fmt.Errorf("gpa2hva: %s: %w", line, vmi.ErrNotPresent)
	case strings.HasPrefix(line, "unknown command"):
		return 0, "", errNoGPA2HVA
	}
	return 0, "", fmt.Errorf("gpa2hva: unexpected answer %q: %w", clip(line, 200), vmi.ErrFormat)
}

// Mapping is one line of /proc/PID/maps (proc(5)): [Start, End) with its
// permissions ("rw-p") and the file it maps, "" when anonymous.
type Mapping struct {
	Start, End uint64
	Perms      string
	Offset     uint64
	Path       string
}

// ParseMaps parses the text of /proc/PID/maps.
func ParseMaps(text string) ([]Mapping, error) {
	var maps []Mapping
	for n, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		// address perms offset dev inode [path]; the path may hold spaces.
		f := strings.Fields(line)
		if len(f) < 5 {
			return nil, fmt.Errorf("maps line %d %q: %w", n+1, clip(line, 100), vmi.ErrFormat)
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil || end < start || len(f[1]) != 4 {
			return nil, fmt.Errorf("maps line %d %q: %w", n+1, clip(line, 100), vmi.ErrFormat)
		}
		m := Mapping{Start: start, End: end, Perms: f[1], Offset: off}
		if len(f) > 5 {
			rest := line
			for i := 0; i < 5; i++ { // skip five fields
				rest = strings.TrimLeft(rest, " \t")
				rest = rest[strings.IndexAny(rest, " \t"):] // len(f) > 5: there is a blank
			}
			m.Path = strings.TrimSpace(rest)
		}
		maps = append(maps, m)
	}
	return maps, nil
}

// Readable reports whether the mapping can be read.
func (m Mapping) Readable() bool { return strings.HasPrefix(m.Perms, "r") }

// RAMBlock is one line of HMP `info ramblock`: a block of host memory that
// QEMU allocated for guest RAM, ROM or device memory.
type RAMBlock struct {
	Name        string // the block's idstr: "pc.ram", "mem", "0000:00:02.0/vga.vram"
	PageSize    string // "4 KiB", "2 MiB"
	Offset      uint64 // in QEMU's ram_addr_t space, not an address
	Used, Total uint64 // bytes in use, and reserved (resizeable blocks)
}

// ParseRAMBlocks parses `info ramblock`:
//
//	Block Name    PSize              Offset               Used              Total
//	    pc.ram    4 KiB  0x0000000000000000 0x0000000008000000 0x0000000008000000
func ParseRAMBlocks(text string) ([]RAMBlock, error) {
	var blocks []RAMBlock
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (len(f) >= 2 && f[0] == "Block" && f[1] == "Name") {
			continue
		}
		if len(f) < 6 {
			return nil, fmt.Errorf("info ramblock: line %d %q: %w", n+1, clip(line, 100), vmi.ErrFormat)
		}
		k := len(f)
		var v [3]uint64
		for i := range v {
			s := f[k-3+i]
			if !strings.HasPrefix(s, "0x") {
				return nil, fmt.Errorf("info ramblock: line %d %q: %w", n+1, clip(line, 100), vmi.ErrFormat)
			}
			var err error
			if v[i], err = strconv.ParseUint(s[2:], 16, 64); err != nil {
				return nil, fmt.Errorf("info ramblock: line %d %q: %w", n+1, clip(line, 100), vmi.ErrFormat)
			}
		}
		blocks = append(blocks, RAMBlock{
			Name:     strings.Join(f[:k-5], " "),
			PageSize: f[k-5] + " " + f[k-4],
			Offset:   v[0], Used: v[1], Total: v[2],
		})
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("info ramblock: no blocks: %w", vmi.ErrFormat)
	}
	return blocks, nil
}

// blockFor returns the RAM block that memory region name (as `info mtree`
// prints it) allocates: device blocks carry their device's path as a
// prefix ("0000:00:02.0/vga.vram" for region "vga.vram").
func blockFor(blocks []RAMBlock, name string) (RAMBlock, bool) {
	for _, b := range blocks {
		if b.Name == name || strings.HasSuffix(b.Name, "/"+name) {
			return b, true
		}
	}
	return RAMBlock{}, false
}

// GuessBlockHVA finds where a RAM block lives in QEMU's address space from
// the process's mappings alone, for a QEMU without gpa2hva. QEMU maps every
// block on its own (qemu_ram_mmap): a private anonymous (or, for a file
// backend, a mapping of memPath) read-write mapping of exactly the block's
// reserved size, followed by a PROT_NONE guard page. A block is placed only
// when exactly one mapping fits; otherwise the answer is an error, never a
// guess between candidates.
func GuessBlockHVA(maps []Mapping, b RAMBlock, memPath string) (uint64, error) {
	size := b.Total
	if size == 0 {
		size = b.Used
	}
	var withGuard, plain []Mapping
	for i, m := range maps {
		if m.End-m.Start != size || !strings.HasPrefix(m.Perms, "rw") {
			continue
		}
		path := strings.TrimSuffix(m.Path, " (deleted)")
		if memPath != "" && path != memPath || memPath == "" && path != "" {
			continue
		}
		plain = append(plain, m)
		if i+1 < len(maps) && maps[i+1].Start == m.End && strings.HasPrefix(maps[i+1].Perms, "---") {
			withGuard = append(withGuard, m)
		}
	}
	switch {
	case len(withGuard) == 1:
		return withGuard[0].Start, nil
	case len(withGuard) == 0 && len(plain) == 1:
		return plain[0].Start, nil
	case len(plain) == 0:
		return 0, fmt.Errorf("RAM block %q: no read-write mapping of %#x bytes in QEMU's address space: %w", b.Name, size, vmi.ErrNotFound)
	}
	return 0, fmt.Errorf("RAM block %q: %d mappings of %#x bytes could hold it; QEMU (without gpa2hva) does not say which: %w",
		b.Name, max(len(withGuard), len(plain)), size, vmi.ErrUnsupported)
}

// errUnmapped: a host range is not wholly readable in QEMU's mappings.
var errUnmapped = errors.New("not mapped readable in QEMU's address space")

// checkMapped returns nil when [hva, hva+n) lies in readable mappings with
// no gap. maps must be sorted, as the kernel prints them.
func checkMapped(maps []Mapping, hva, n uint64) error {
	end := hva + n
	if end < hva {
		return errUnmapped
	}
	for _, m := range maps {
		if m.End <= hva {
			continue
		}
		if m.Start > hva || !m.Readable() {
			break
		}
		hva = m.End
		if hva >= end {
			return nil
		}
	}
	return errUnmapped
}
