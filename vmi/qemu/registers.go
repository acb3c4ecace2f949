package qemu

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// Registers are the control registers `info registers` prints for one vCPU.
type Registers struct {
	CR0, CR2, CR3, CR4, EFER uint64
}

// State is the part vmi needs.
func (r Registers) State() vmi.CPUState {
	return vmi.CPUState{Known: true, CR0: r.CR0, CR3: r.CR3, CR4: r.CR4, EFER: r.EFER}
}

var regRE = regexp.MustCompile(`\b(CR0|CR2|CR3|CR4|EFER)=([0-9a-fA-F]+)\b`)

// ParseRegisters reads the first vCPU's control registers out of HMP
// `info registers` text (a "CPU#N" header, then lines of NAME=hex). Text
// after a second CPU header is ignored; CR0, CR3, CR4 and EFER must be
// present, CR2 may be missing.
func ParseRegisters(text string) (Registers, error) {
	if i := strings.Index(text, "CPU#"); i >= 0 {
		text = text[i+4:]
		if j := strings.Index(text, "CPU#"); j >= 0 {
			text = text[:j]
		}
	}
	var r Registers
	seen := map[string]bool{}
	for _, m := range regRE.FindAllStringSubmatch(text, -1) {
		if seen[m[1]] {
			continue
		}
		v, err := strconv.ParseUint(m[2], 16, 64)
		if err != nil {
			return Registers{}, fmt.Errorf("info registers: %s=%s: %w", m[1], m[2], vmi.ErrFormat)
		}
		seen[m[1]] = true
		switch m[1] {
		case "CR0":
			r.CR0 = v
		case "CR2":
			r.CR2 = v
		case "CR3":
			r.CR3 = v
		case "CR4":
			r.CR4 = v
		case "EFER":
			r.EFER = v
		}
	}
	for _, k := range []string{"CR0", "CR3", "CR4", "EFER"} {
		if !seen[k] {
			return Registers{}, fmt.Errorf("info registers: no %s= in %q: %w", k, clip(text, 200), vmi.ErrFormat)
		}
	}
	return r, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
