package xene2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MultiDomU is the domU dom0-tests.sh starts beside the PVH one for the
// multi-guest commands (its "multi" block).
const MultiDomU = "xa-multi"

// MultiPrefix marks the commands of that block.
const MultiPrefix = "multi-"

// CheckMulti checks the multi-guest block of dom0-tests.sh: each command
// ran, and its output is right for every guest it names. nil, nil when the
// block did not run (its domU is not in the log).
func CheckMulti(l *Log) (ran []string, errs []error) {
	var cmds []*Command
	for _, c := range l.Commands {
		if strings.HasPrefix(c.Label, MultiPrefix) {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) == 0 && l.DomUs[MultiDomU] == nil {
		return nil, []error{fmt.Errorf("dom0 ran no %s* command: the multi block of dom0-tests.sh did not run", MultiPrefix)}
	}
	truth := map[string][]string{}
	for _, name := range []string{MultiDomU, cmds0DomU(cmds)} {
		mods, err := CheckDomU(l, name)
		if err != nil {
			return nil, []error{err}
		}
		truth[name] = mods
	}
	for _, c := range cmds {
		ran = append(ran, c.Label)
		if err := CheckCommand(c, "", nil); err != nil {
			errs = append(errs, err)
			continue
		}
		var err error
		switch c.Label {
		case "multi-lkm", "multi-all":
			err = checkRecords(c, truth)
		case "multi-list":
			err = checkList(c, map[string]string{c.DomU: "PVH", MultiDomU: "PV", "Domain-0": "PV"})
		case "multi-one-gone":
			err = checkRounds(c, truth)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Argv, err))
		}
	}
	wants := []string{"multi-lkm", "multi-all", "multi-list", "multi-one-gone"}
	if l.Marks["MULTI-GONE-LEFT-OUT"] {
		// XA_XEN_MULTI_GONE=0: the run chose to leave it out.
		wants = wants[:3]
	}
	for _, want := range wants {
		if !strings.Contains(" "+strings.Join(ran, " ")+" ", " "+want+" ") {
			errs = append(errs, fmt.Errorf("dom0 did not run %s", want))
		}
	}
	return ran, errs
}

// cmds0DomU is the domU the block ran with (DOMU_NAME: the PVH one).
func cmds0DomU(cmds []*Command) string {
	if len(cmds) == 0 {
		return "xa-pvh"
	}
	return cmds[0].DomU
}

func stdout(c *Command) []string {
	got := c.Stdout
	for len(got) > 0 && got[len(got)-1] == "" {
		got = got[:len(got)-1]
	}
	return got
}

// tagged splits "[NAME] rest".
func tagged(line string) (name, rest string, ok bool) {
	if !strings.HasPrefix(line, "[") {
		return "", "", false
	}
	name, rest, ok = strings.Cut(line[1:], "] ")
	return name, rest, ok
}

// checkRecords: every line is one JSON record of a test guest, with the
// time of a live guest's record, and each guest's records are exactly its
// /proc/modules, in order.
func checkRecords(c *Command, truth map[string][]string) error {
	got := map[string][]string{}
	for _, l := range stdout(c) {
		var r struct{ Guest, Time, Name string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			return fmt.Errorf("line %q is not a JSON record: %v", l, err)
		}
		if _, ok := truth[r.Guest]; !ok {
			return fmt.Errorf("line %q: a guest %q that the test did not start", l, r.Guest)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
			return fmt.Errorf("line %q: no time of a live guest's record: %v", l, err)
		}
		got[r.Guest] = append(got[r.Guest], r.Name)
	}
	for name, want := range truth {
		if strings.Join(got[name], ",") != strings.Join(want, ",") {
			return fmt.Errorf("guest %s: printed %v; its /proc/modules lists %v", name, got[name], want)
		}
	}
	return nil
}

// checkRounds: the polling loop's lines are "[NAME] round N COUNT" with
// each guest's module count, N counting up per guest.
func checkRounds(c *Command, truth map[string][]string) error {
	next := map[string]int{}
	for _, l := range stdout(c) {
		name, rest, ok := tagged(l)
		f := strings.Fields(rest)
		want, known := truth[name]
		if !ok || !known || len(f) != 3 || f[0] != "round" {
			return fmt.Errorf("line %q is not [NAME] round N COUNT of a test guest", l)
		}
		next[name]++
		if f[1] != strconv.Itoa(next[name]) || f[2] != strconv.Itoa(len(want)) {
			return fmt.Errorf("line %q: want round %d with %d modules", l, next[name], len(want))
		}
	}
	for name := range truth {
		if next[name] == 0 {
			return fmt.Errorf("no round from %s", name)
		}
	}
	return nil
}

// listEntry is the part of a line of `xascript list --json` compared with
// xl list.
type listEntry struct {
	Kind      string `json:"kind"`
	ID        *int   `json:"id"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	MemoryMiB uint64 `json:"memory_mib"`
	VCPUs     uint32 `json:"vcpus"`
	State     string `json:"state"`
}

// checkList compares xascript list --json with the xl list printed just
// before it: the same domains with the same id, name, memory, vCPUs and
// state (but for r and b, which change from one moment to the next), and
// the type each test domain was created with.
func checkList(c *Command, types map[string]string) error {
	out := stdout(c)
	sep := -1
	for i, l := range out {
		if l == "--- xascript list --json ---" {
			sep = i
		}
	}
	if sep < 1 || !strings.HasPrefix(out[0], "Name") {
		return fmt.Errorf("no xl list table before the separator")
	}
	var entries []listEntry
	for _, l := range out[sep+1:] {
		var e listEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			return fmt.Errorf("xascript list --json: line %q: %v", l, err)
		}
		entries = append(entries, e)
	}
	byID := map[int]listEntry{}
	for _, e := range entries {
		if e.Kind == "xen" && e.ID != nil {
			byID[*e.ID] = e
		}
	}
	rows := out[1:sep]
	if len(rows) != len(byID) {
		return fmt.Errorf("xl list shows %d domains, xascript list %d", len(rows), len(byID))
	}
	for _, r := range rows {
		f := strings.Fields(r) // Name ID Mem VCPUs State Time(s)
		if len(f) != 6 {
			return fmt.Errorf("xl list row %q", r)
		}
		id, _ := strconv.Atoi(f[1])
		e, ok := byID[id]
		if !ok {
			return fmt.Errorf("xascript list has no domain %d (%s)", id, f[0])
		}
		got := fmt.Sprintf("%s %d %d %d %s", e.Name, id, e.MemoryMiB, e.VCPUs, e.State[2:])
		want := fmt.Sprintf("%s %s %s %s %s", f[0], f[1], f[2], f[3], f[4][2:])
		if len(e.State) != 6 || len(f[4]) != 6 || got != want {
			return fmt.Errorf("domain %d: xascript list says %q (%s), xl list %q", id, got, e.State, want)
		}
		if t, ok := types[e.Name]; ok && e.Type != t {
			return fmt.Errorf("domain %s: type %s, want %s", e.Name, e.Type, t)
		}
	}
	return nil
}
