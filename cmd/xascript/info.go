package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// infoReport is what `xascript info` prints: how the target was read and
// the kernel located. Hex strings keep 64-bit values exact in JSON.
type infoReport struct {
	Target        string   `json:"target"`
	File          string   `json:"file"`
	MemoryRanges  []string `json:"memory_ranges"`
	CPUState      bool     `json:"cpu_state"`
	CR3           string   `json:"cr3,omitempty"`
	Paging        string   `json:"paging"`
	Root          string   `json:"page_table_root"`
	RootSource    string   `json:"root_source"`
	Banner        string   `json:"banner"`
	TextPhys      string   `json:"text_phys"`
	KASLRVirtual  string   `json:"kaslr_virtual_offset"`
	KASLRPhysical string   `json:"kaslr_physical_offset"`
	SymbolShift   string   `json:"symbol_shift"`
	Symbols       int      `json:"symbols"`
	SymbolsFrom   string   `json:"symbols_from"`
	// TextOnly: the symbol table has text symbols only (a kernel
	// without CONFIG_KALLSYMS_ALL); VMCOREINFO adds some data symbols.
	TextOnly   bool           `json:"text_symbols_only"`
	Vmcoreinfo vmcoreinfoInfo `json:"vmcoreinfo"`
	TypesFrom  string         `json:"types_from,omitempty"`
	TypesError string         `json:"types_error,omitempty"`
	ModuleBTF  []string       `json:"module_btf,omitempty"`
	ModuleSkip []string       `json:"module_btf_skipped,omitempty"`
	ModuleErr  string         `json:"module_btf_error,omitempty"`
	Validation string         `json:"validation"`
	Notes      []string       `json:"notes,omitempty"`
	Millis     float64        `json:"ms"`
}

// vmcoreinfoInfo is what the kernel's VMCOREINFO offered.
type vmcoreinfoInfo struct {
	Found     bool   `json:"found"`
	Where     string `json:"where,omitempty"`
	OSRelease string `json:"os_release,omitempty"`
	BuildID   string `json:"build_id,omitempty"`
	Symbols   int    `json:"symbols"`
	// SymbolsAdded counts those the symbol table lacks.
	SymbolsAdded int    `json:"symbols_added"`
	Malformed    int    `json:"malformed_lines,omitempty"`
	Error        string `json:"error,omitempty"`
}

func runInfo(o *options, stdout, stderr io.Writer) int {
	if !o.targetGiven() {
		fmt.Fprintln(stderr, "xascript info: "+giveTarget)
		return exitUsage
	}
	start := time.Now()
	g, err := openGuest(o)
	if err != nil {
		printError(stderr, "xascript info", err, true) // info is where the details are
		return exitTarget
	}
	defer g.Close()
	k, d := g.kernel, g.kernel.Describe()
	r := infoReport{
		Target: d.Target, File: o.targetName(), CPUState: g.target.CPU().Known,
		Paging: d.Paging, Root: hex(d.Root), RootSource: d.RootSource, Banner: d.Banner,
		TextPhys: hex(d.TextPhys), KASLRVirtual: signedHex(d.KASLRVirtual), KASLRPhysical: signedHex(d.KASLRPhysical),
		SymbolShift: signedHex(d.SymbolShift), Symbols: d.Symbols, SymbolsFrom: d.SymbolsFrom, Notes: d.Notes,
	}
	vs := k.VmcoreinfoSummary()
	r.TextOnly = k.TextSymbolsOnly()
	r.Vmcoreinfo = vmcoreinfoInfo{Found: vs.Found, Where: vs.Where, OSRelease: vs.OSRelease, BuildID: vs.BuildID,
		Symbols: vs.Symbols, SymbolsAdded: vs.Added, Malformed: vs.Malformed, Error: vs.Error}
	for _, m := range g.target.MemoryMap() {
		r.MemoryRanges = append(r.MemoryRanges, m.String())
	}
	if r.CPUState {
		r.CR3 = hex(g.target.CPU().CR3)
	}
	if _, err := k.Types(); err != nil {
		r.TypesError = err.Error()
	}
	r.TypesFrom = k.Describe().TypesFrom // known once the types are loaded
	if r.TypesError == "" {
		if r.ModuleBTF, r.ModuleSkip, err = k.ModuleBTF(); err != nil {
			r.ModuleErr = err.Error()
		}
	}
	if r.TypesError != "" {
		r.Validation = "not checked (needs struct layouts)"
	} else if v, err := k.Validate(); err != nil {
		r.Validation = "FAILED: " + err.Error()
	} else {
		r.Validation = v
	}
	r.Millis = float64(time.Since(start).Microseconds()) / 1000
	if o.json {
		if err := writeJSONReport(stdout, &r); err != nil {
			printError(stderr, "xascript info", err, o.verbose)
			return exitScript
		}
		return exitOK
	}
	if o.dom != "" { // the target's kind already names the domain
		fmt.Fprintf(stdout, "target:          %s\n", r.Target)
	} else {
		fmt.Fprintf(stdout, "target:          %s (%s)\n", r.Target, r.File)
	}
	fmt.Fprintf(stdout, "memory:          %v\n", r.MemoryRanges)
	if r.CPUState {
		fmt.Fprintf(stdout, "cpu state:       CR3 %s\n", r.CR3)
	} else {
		fmt.Fprintf(stdout, "cpu state:       none in this target\n")
	}
	fmt.Fprintf(stdout, "kernel:          %s\n", r.Banner)
	fmt.Fprintf(stdout, "paging:          %s, root %s from %s\n", r.Paging, r.Root, r.RootSource)
	fmt.Fprintf(stdout, "KASLR:           virtual offset %s, physical offset %s (_text at physical %s)\n", r.KASLRVirtual, r.KASLRPhysical, r.TextPhys)
	if r.TextOnly {
		fromMemory := strings.Contains(r.SymbolsFrom, "memory (kallsyms tables")
		from := r.SymbolsFrom + " (no KALLSYMS_ALL)"
		if fromMemory {
			from = "memory (kallsyms without KALLSYMS_ALL)"
		}
		fmt.Fprintf(stdout, "symbols:         %d text symbols from %s + %d from VMCOREINFO (shifted by %s)\n",
			r.Symbols, from, r.Vmcoreinfo.SymbolsAdded, r.SymbolShift)
		if fromMemory {
			fmt.Fprintf(stdout, "                 text symbols from %s\n", r.SymbolsFrom)
		}
	} else {
		fmt.Fprintf(stdout, "symbols:         %d from %s (shifted by %s)\n", r.Symbols, r.SymbolsFrom, r.SymbolShift)
	}
	if v := r.Vmcoreinfo; v.Found {
		id := "no build id"
		if v.BuildID != "" {
			id = "build id " + v.BuildID
		}
		fmt.Fprintf(stdout, "vmcoreinfo:      %s, %s, %d symbols (%d not in the symbol table), %s", v.OSRelease, id, v.Symbols, v.SymbolsAdded, v.Where)
		if v.Malformed > 0 {
			fmt.Fprintf(stdout, ", %d malformed lines skipped", v.Malformed)
		}
		fmt.Fprintln(stdout)
	} else {
		fmt.Fprintf(stdout, "vmcoreinfo:      none: %s\n", v.Error)
	}
	if r.TypesError != "" {
		fmt.Fprintf(stdout, "types:           none: %s\n", r.TypesError)
	} else {
		fmt.Fprintf(stdout, "types:           %s\n", r.TypesFrom)
		switch {
		case r.ModuleErr != "":
			fmt.Fprintf(stdout, "module types:    none: %s\n", r.ModuleErr)
		case len(r.ModuleBTF) > 0 || len(r.ModuleSkip) > 0:
			fmt.Fprintf(stdout, "module types:    BTF of %d loaded modules, for types vmlinux lacks\n", len(r.ModuleBTF))
			for _, sk := range r.ModuleSkip {
				fmt.Fprintf(stdout, "                 skipped %s\n", sk)
			}
		}
	}
	fmt.Fprintf(stdout, "validation:      %s\n", r.Validation)
	for _, n := range r.Notes {
		fmt.Fprintf(stdout, "note:            %s\n", n)
	}
	fmt.Fprintf(stdout, "time:            %.1f ms\n", r.Millis)
	return exitOK
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }

func signedHex(v int64) string {
	if v < 0 {
		return fmt.Sprintf("-%#x", uint64(-v))
	}
	return fmt.Sprintf("%#x", v)
}
