package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/xascript/xascript/vmi"
)

// printError writes err as one line after prefix ("xascript", "xascript
// info"): what failed and what to do. An error that carries details
// (vmi.DetailedError: every candidate a search rejected, and why) prints
// them below it, indented, when verbose; else the line says where they
// are.
func printError(w io.Writer, prefix string, err error, verbose bool) {
	msg := oneLine(err)
	details := vmi.Details(err)
	if len(details) > 0 && !verbose {
		msg += " (details: --verbose or xascript info)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", prefix, msg)
	if verbose {
		for _, d := range details {
			d, _, _ = strings.Cut(d, "\n") // guest text never breaks the layout
			fmt.Fprintf(&b, "  %s\n", d)
		}
	}
	io.WriteString(w, b.String())
}
