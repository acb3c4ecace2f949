package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/xascript/xascript/vmi/linux"
)

// runProfile writes the guest's profile (symbols and struct layouts, from
// memory or from the files given) as a Volatility 3 ISF, so that Volatility
// users need no dwarf2json run.
func runProfile(o *options, stdout, stderr io.Writer) int {
	if !o.targetGiven() || o.isf == "" {
		fmt.Fprintln(stderr, "xascript profile: give --isf OUT.json and a target: "+giveTarget)
		return exitUsage
	}
	start := time.Now()
	g, err := openGuestWith(o, "") // --isf names the output here
	if err != nil {
		printError(stderr, "xascript profile", err, o.verbose)
		return exitTarget
	}
	defer g.Close()
	f, err := os.Create(o.isf)
	if err != nil {
		printError(stderr, "xascript profile", err, o.verbose)
		return exitUsage
	}
	w := bufio.NewWriterSize(f, 1<<20)
	// With --dwarf, the -dbg vmlinux types every variable (and gives the
	// layouts, from its .BTF).
	err = g.kernel.ExportISF(w, version, linux.ExportOptions{DWARFPath: o.dwarf})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(o.isf)
		fmt.Fprintf(stderr, "xascript profile: write %s: %v\n", o.isf, err)
		return exitTarget
	}
	st, _ := os.Stat(o.isf)
	fmt.Fprintf(stdout, "wrote %s: %d symbols, %.1f MB, in %.2f s\n", o.isf, g.kernel.Syms.Len(), float64(st.Size())/1e6, time.Since(start).Seconds())
	return exitOK
}
