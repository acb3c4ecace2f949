package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/xascript/xascript/bindings"
	"github.com/xascript/xascript/runtime"
)

// refuseTargetless is the check made before a script runs with no target:
// a script that calls functions needing one (read_u32, symbol, walk_list,
// guest_info, ...) is a usage error, reported before it runs (so before it
// prints half its output or sets a disk watch), with exit status exitUsage.
// The script is compiled, not run, and the global names its code reads are
// compared with the bindings that need a target (runtime.GlobalsRead says
// what the scan sees). A script that needs none (pure Lua, help, sleep,
// on_disk_event with --disk) runs. It returns -1 to go on, else the exit
// status.
func refuseTargetless(script string, stderr io.Writer) int {
	uses, err := runtime.GlobalsRead(script)
	if err != nil {
		return -1 // a syntax error: the run reports it, with file:line
	}
	var need []string
	for _, u := range uses {
		if bindings.NeedsTarget(u.Name) {
			need = append(need, fmt.Sprintf("%s (line %d)", u.Name, u.Line))
		}
	}
	if len(need) == 0 {
		return -1
	}
	const shown = 3
	list := strings.Join(need[:min(len(need), shown)], ", ")
	if len(need) > shown {
		list += fmt.Sprintf(" and %d more", len(need)-shown)
	}
	fmt.Fprintf(stderr, "xascript: %s calls %s, which need a target: %s\n", script, list, giveTarget)
	return exitUsage
}
