// Package xene2e is the Xen end-to-end test: real Xen 4.17 under QEMU TCG
// with a busybox dom0 and a PV and a PVH domU, booted by
// testdata/xen/xen-e2e.sh, with xascript run inside dom0 against each domU
// (the commands are in testdata/xen/dom0-tests.sh). The test itself
// (build tag xen, `make e2e-xen`) compares what xascript printed with the
// /proc/modules each domU printed on its own console.
//
// This file reads the serial log the harness leaves: Xen's console, which
// carries dom0's console, into which dom0 copies each domU's console log.
// It runs without Xen, so its unit test is part of `go test ./...`.
package xene2e

import (
	"regexp"
	"strconv"
	"strings"
)

// Command is one xa_run of dom0-tests.sh.
type Command struct {
	DomU, Label string
	Argv        string
	Stdout      []string
	Stderr      []string
	RC          int    // exit status; -1 when the end marker is missing
	Secs        string // run time as dom0 measured it
	Done        bool   // the end marker was seen
}

// DomU is what dom0 reported about one test domU.
type DomU struct {
	Name    string
	ID      string   // from @@XA-DOMID@@; empty when the domU never became ready
	Console []string // the domU's console log, as dom0 copied it
	Fail    []string // @@XA-DOMU-FAIL@@ reasons
	Retried []string // failures of boots that were retried (@@XA-DOMU-RETRY@@)
}

// Section returns the lines the domU printed between @@XA-BEGIN-NAME@@ and
// @@XA-END-NAME@@ on its console.
func (d *DomU) Section(name string) ([]string, bool) {
	begin, end := "@@XA-BEGIN-"+name+"@@", "@@XA-END-"+name+"@@"
	for i, l := range d.Console {
		if l != begin {
			continue
		}
		for j := i + 1; j < len(d.Console); j++ {
			if d.Console[j] == end {
				return d.Console[i+1 : j], true
			}
		}
		return nil, false
	}
	return nil, false
}

// Modules returns the module names of the domU's /proc/modules, in order:
// the first word of each line.
func (d *DomU) Modules() ([]string, bool) {
	lines, ok := d.Section("MODULES")
	var mods []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 {
			mods = append(mods, f[0])
		}
	}
	return mods, ok
}

// Log is a parsed serial log.
type Log struct {
	DomUs    map[string]*DomU
	Commands []*Command
	Sections map[string][]string // dom0's own sections (DOM0INFO, XLLIST), the last of each name
	Times    [][2]string         // @@XA-T NAME UPTIME@@ stamps, in order
	Dom0Done bool                // dom0 reached @@XA-DOM0-DONE@@
	Dom0Fail []string            // @@XA-DOM0-FAIL@@ reasons
	Marks    map[string]bool     // other argument-less markers seen (@@XA-NAME@@), by NAME
	XenSeen  bool                // Xen printed its banner
}

// CommandsFor returns the commands run against one domU, in order.
func (l *Log) CommandsFor(domU string) []*Command {
	var out []*Command
	for _, c := range l.Commands {
		if c.DomU == domU {
			out = append(out, c)
		}
	}
	return out
}

var (
	markRE   = regexp.MustCompile(`^@@XA-([A-Z0-9]+(?:-[A-Z0-9]+)*)(?: (.*))?@@$`)
	endCmdRE = regexp.MustCompile(`^(\S+) (\S+) rc=(-?\d+)(?: secs=(\S+))?$`)
)

// Parse reads a serial log. Lines Xen printed itself ("(XEN) ...") are
// dropped wherever they fall; carriage returns are removed.
func Parse(serial string) *Log {
	l := &Log{DomUs: map[string]*DomU{}, Sections: map[string][]string{}, Marks: map[string]bool{}}
	domU := func(name string) *DomU {
		d := l.DomUs[name]
		if d == nil {
			d = &DomU{Name: name}
			l.DomUs[name] = d
		}
		return d
	}
	var (
		inDomU  *DomU    // copying a domU's console
		cmd     *Command // inside a command's output
		stderr  bool     // past @@XA-STDERR@@
		section string   // inside a dom0 section
		secBuf  []string
		endCmd  = func() { cmd, stderr = nil, false }
		process func(string)
	)
	process = func(line string) {
		if inDomU != nil {
			if line == "@@XA-END-DOMU@@" {
				inDomU = nil
			} else {
				inDomU.Console = append(inDomU.Console, line)
			}
			return
		}
		m := markRE.FindStringSubmatch(line)
		if cmd != nil {
			switch {
			case m != nil && m[1] == "STDERR" && !stderr:
				stderr = true
			case m != nil && m[1] == "END-CMD":
				if e := endCmdRE.FindStringSubmatch(m[2]); e != nil {
					cmd.RC, _ = strconv.Atoi(e[3])
					cmd.Secs = e[4]
					cmd.Done = true
				}
				endCmd()
			case m != nil && m[1] == "ARGV" && !stderr && len(cmd.Stdout) == 0 && cmd.Argv == "":
				cmd.Argv = m[2]
			case m != nil:
				// Any other marker: the command's output was cut off (dom0
				// died, characters lost); leave it not Done and read the
				// marker anew.
				endCmd()
				process(line)
			case stderr:
				cmd.Stderr = append(cmd.Stderr, line)
			default:
				cmd.Stdout = append(cmd.Stdout, line)
			}
			return
		}
		if section != "" {
			if line == "@@XA-END-"+section+"@@" {
				l.Sections[section] = secBuf
				section, secBuf = "", nil
			} else {
				secBuf = append(secBuf, line)
			}
			return
		}
		if m == nil {
			return
		}
		switch name, arg := m[1], m[2]; {
		case name == "BEGIN-DOMU":
			inDomU = domU(arg)
		case name == "BEGIN-CMD":
			f := strings.SplitN(arg, " ", 2)
			if len(f) == 2 {
				cmd = &Command{DomU: f[0], Label: f[1], RC: -1}
				l.Commands = append(l.Commands, cmd)
			}
		case name == "DOMID":
			if f := strings.Fields(arg); len(f) == 2 {
				domU(f[0]).ID = f[1]
			}
		case name == "DOMU-FAIL":
			f := strings.SplitN(arg, " ", 2)
			d := domU(f[0])
			d.Fail = append(d.Fail, strings.Join(f[1:], " "))
		case name == "DOMU-RETRY":
			d := domU(strings.TrimSpace(arg))
			d.Retried = append(d.Retried, d.Fail...)
			d.Fail = nil
		case name == "DOM0-DONE":
			l.Dom0Done = true
		case name == "DOM0-FAIL":
			l.Dom0Fail = append(l.Dom0Fail, arg)
		case name == "T":
			if f := strings.Fields(arg); len(f) == 2 {
				l.Times = append(l.Times, [2]string{f[0], f[1]})
			}
		case strings.HasPrefix(name, "BEGIN-"):
			section = strings.TrimPrefix(name, "BEGIN-")
		case arg == "":
			l.Marks[name] = true
		}
	}
	for _, line := range strings.Split(serial, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "(XEN)") {
			if strings.Contains(line, "Xen version") {
				l.XenSeen = true
			}
			continue
		}
		process(line)
	}
	return l
}
