package qemu

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// Region is one range of a flat view from `info mtree -f`: guest-physical
// [Start, End] (End inclusive, as QEMU prints it) rendered by memory region
// Name at byte Offset into that region.
type Region struct {
	Start, End uint64
	Type       string // "ram", "rom", "i/o", "romd", "ramd"; "nv-" dropped
	Name       string
	Offset     uint64
}

// Len is the region's size in bytes.
func (r Region) Len() uint64 { return r.End - r.Start + 1 }

// RAM reports whether the region is backed by a RAM block (host memory):
// "ram", and "rom" (read-only RAM, such as shadowed BIOS areas). "romd" and
// "ramd" are devices.
func (r Region) RAM() bool { return r.Type == "ram" || r.Type == "rom" }

// "  0000000000100000-0000000007ffffff (prio 0, ram): mem @0000000000100000"
// QEMU may add " [disabled]"-style notes and owner text after the name.
var mtreeLine = regexp.MustCompile(`^\s+([0-9a-fA-F]+)-([0-9a-fA-F]+) \(prio -?\d+, (?:nv-)?([a-z/]+)\): (\S+)(?: @([0-9a-fA-F]+))?`)

// ParseFlatView returns the ranges of the flat view that serves address
// space as (`AS "memory"` for the system bus) in HMP `info mtree -f` text,
// sorted by address.
func ParseFlatView(text, as string) ([]Region, error) {
	want := fmt.Sprintf(` AS %q,`, as)
	var (
		regs  []Region
		inOur bool
		found bool
	)
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "FlatView #"):
			if found {
				return sortRegions(regs), nil
			}
			inOur = false
		case strings.HasPrefix(line, " AS "):
			if strings.HasPrefix(line, want) {
				inOur, found = true, true
			}
		case inOur:
			m := mtreeLine.FindStringSubmatch(line)
			if m == nil {
				continue // " Root memory region: ...", blank lines
			}
			start, err1 := strconv.ParseUint(m[1], 16, 64)
			end, err2 := strconv.ParseUint(m[2], 16, 64)
			var off uint64
			var err3 error
			if m[5] != "" {
				off, err3 = strconv.ParseUint(m[5], 16, 64)
			}
			if err1 != nil || err2 != nil || err3 != nil || end < start {
				return nil, fmt.Errorf("info mtree -f: line %d %q: %w", n+1, line, vmi.ErrFormat)
			}
			regs = append(regs, Region{Start: start, End: end, Type: m[3], Name: m[4], Offset: off})
		}
	}
	if !found {
		return nil, fmt.Errorf("info mtree -f: no flat view for address space %q: %w", as, vmi.ErrFormat)
	}
	return sortRegions(regs), nil
}

func sortRegions(r []Region) []Region {
	sort.Slice(r, func(i, j int) bool { return r[i].Start < r[j].Start })
	return r
}
